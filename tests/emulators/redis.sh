#!/usr/bin/env bash
# redis-server (Debian's package), the Redis server of the tests, as a plain loopback process.
#
#   redis.sh install      install redis-server and redis-cli with apt-get if missing (~10 s once; else instant)
#   redis.sh start DIR    start a fresh server (random free port, random password, no persistence)
#                         with its files under DIR, write DIR/env (sourceable) and print it
#   redis.sh stop DIR     stop the server started in DIR (by its pid) and wait for it to exit
#
# DIR/env sets STOWAGE_REDIS_HOST, STOWAGE_REDIS_PORT and STOWAGE_REDIS_PASSWORD. Several servers
# can run at once. Recipe: /work/shared/reference/emulators.md (Redis).
set -euo pipefail

die() { echo "redis.sh: $*" >&2; exit 1; }

install() {
    if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
        return 0
    fi
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "redis.sh: installing redis-server with apt-get" >&2
    # The package lists may be missing or stale on a fresh machine: update once if needed.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q redis-server >&2 || {
        "${sudo[@]}" apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q redis-server >&2
    }
    command -v redis-server >/dev/null || die "redis-server is still missing after apt-get install"
}

# A free TCP port on 127.0.0.1 (bound to port 0, then released) and a random password, on one line.
randoms() {
    python3 - <<'EOF'
import secrets, socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
print(port, secrets.token_hex(24))
EOF
}

start() {
    command -v redis-server >/dev/null || die "redis-server is not installed; run: $0 install"
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    if [[ -f $DIR/redis.pid ]] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null; then
        die "a server is already running for $DIR (pid $(cat "$DIR/redis.pid")); stop it first"
    fi
    rm -rf "$DIR/redis"
    mkdir -p "$DIR/redis"
    local port password
    read -r port password < <(randoms)
    # The password goes through a config file on stdin, not the command line (ps shows argv).
    printf 'requirepass %s\n' "$password" | redis-server - --bind 127.0.0.1 --port "$port" \
        --dir "$DIR/redis" --save '' --appendonly no --daemonize no --logfile '' >"$DIR/redis.log" 2>&1 &
    echo $! >"$DIR/redis.pid"
    local pid
    pid=$(cat "$DIR/redis.pid")
    for _ in $(seq 200); do
        if [[ $(REDISCLI_AUTH=$password redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
            printf 'export STOWAGE_REDIS_HOST=127.0.0.1 STOWAGE_REDIS_PORT=%s STOWAGE_REDIS_PASSWORD=%s\n' \
                "$port" "$password" >"$DIR/env"
            cat "$DIR/env"
            return 0
        fi
        alive "$pid" || { tail -20 "$DIR/redis.log" >&2; die "server exited (log: $DIR/redis.log)"; }
        sleep 0.05
    done
    tail -20 "$DIR/redis.log" >&2
    die "server not answering PING after 10 s"
}

# True while `pid` runs. An exited server whose parent (the shell of `start`) is gone waits for
# init to reap it, which can take seconds here: a zombie counts as stopped.
alive() { # <pid>
    kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]
}

stop() {
    local pid
    pid=$(cat "$DIR/redis.pid" 2>/dev/null) || return 0
    if kill "$pid" 2>/dev/null; then
        # SIGTERM exits in <0.5 s (nothing to save); give it 10 s, then kill it.
        for _ in $(seq 200); do alive "$pid" || break; sleep 0.05; done
        alive "$pid" && kill -9 "$pid" 2>/dev/null
        while alive "$pid"; do sleep 0.05; done
    fi
    rm -f "$DIR/redis.pid"
}

cmd=${1:-}
case $cmd in
    install) install ;;
    start | stop)
        [[ $# -eq 2 ]] || die "usage: $0 $cmd DIR"
        DIR=$2
        $cmd
        ;;
    *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
