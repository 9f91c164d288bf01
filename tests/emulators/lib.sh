# Shared by garage.sh, redis.sh, gcs.sh and azure.sh (sourced, not run): free ports and random
# secrets, the pid file under DIR, waiting for a server to answer, stopping it, and the `install |
# start DIR | stop DIR` command line. The sourcing script sets NAME (garage, redis, gcs, azure: the
# prefix of messages, DIR/NAME.pid, DIR/NAME.log and the data directory DIR/NAME) and defines
# install, start and stop.

die() { echo "$NAME.sh: $*" >&2; exit 1; }

# <ports> free TCP ports on 127.0.0.1 (bound to port 0 together, then released), then one random
# hex string per further argument (of that many bytes), on one line.
randoms() { # <ports> [<hex bytes>...]
    python3 - "$@" <<'EOF'
import secrets, socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
ports = [s.getsockname()[1] for s in socks]
for s in socks:
    s.close()
print(*ports, *(secrets.token_hex(int(n)) for n in sys.argv[2:]))
EOF
}

# True while `pid` runs. An exited server whose parent (the shell of `start`) is gone waits for
# init to reap it, which can take seconds here: a zombie counts as stopped.
alive() { # <pid>
    kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]
}

# Start of `start`: DIR made absolute, refused while its server runs, a fresh DIR/NAME.
fresh_dir() {
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    if [[ -f $DIR/$NAME.pid ]] && kill -0 "$(cat "$DIR/$NAME.pid")" 2>/dev/null; then
        die "a server is already running for $DIR (pid $(cat "$DIR/$NAME.pid")); stop it first"
    fi
    rm -rf "${DIR:?}/$NAME"
}

# Runs `command` (stderr dropped) every 0.05 s until it succeeds, at most <tries> times; dies
# with the log's tail if the server (pid in DIR/NAME.pid) exits or the tries run out.
wait_until() { # <tries> <message when they run out> <command>...
    local tries=$1 message=$2 pid
    shift 2
    pid=$(cat "$DIR/$NAME.pid")
    for _ in $(seq "$tries"); do
        "$@" 2>/dev/null && return 0
        alive "$pid" || { tail -20 "$DIR/$NAME.log" >&2; die "server exited (log: $DIR/$NAME.log)"; }
        sleep 0.05
    done
    tail -20 "$DIR/$NAME.log" >&2
    die "$message"
}

# SIGTERM to the server started in DIR, up to <tries> x 0.05 s for it to exit, then SIGKILL.
stop_server() { # <tries>
    local pid
    pid=$(cat "$DIR/$NAME.pid" 2>/dev/null) || return 0
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq "$1"); do alive "$pid" || break; sleep 0.05; done
        alive "$pid" && kill -9 "$pid" 2>/dev/null
        while alive "$pid"; do sleep 0.05; done
    fi
    rm -f "$DIR/$NAME.pid"
}

main() {
    local cmd=${1:-}
    case $cmd in
        install) install ;;
        start | stop)
            [[ $# -eq 2 ]] || die "usage: $0 $cmd DIR"
            DIR=$2
            $cmd
            ;;
        *) die "usage: $0 install | start DIR | stop DIR" ;;
    esac
}
