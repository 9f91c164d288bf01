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

NAME=redis
# shellcheck source=tests/emulators/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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

start() {
    command -v redis-server >/dev/null || die "redis-server is not installed; run: $0 install"
    fresh_dir
    mkdir -p "$DIR/redis"
    local port password
    read -r port password < <(randoms 1 24)
    # The password goes through a config file on stdin, not the command line (ps shows argv).
    printf 'requirepass %s\n' "$password" | redis-server - --bind 127.0.0.1 --port "$port" \
        --dir "$DIR/redis" --save '' --appendonly no --daemonize no --logfile '' >"$DIR/redis.log" 2>&1 &
    echo $! >"$DIR/redis.pid"
    wait_until 200 "server not answering PING after 10 s" pong "$port" "$password"
    printf 'export STOWAGE_REDIS_HOST=127.0.0.1 STOWAGE_REDIS_PORT=%s STOWAGE_REDIS_PASSWORD=%s\n' \
        "$port" "$password" >"$DIR/env"
    cat "$DIR/env"
}

pong() { # <port> <password>
    [[ $(REDISCLI_AUTH=$2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

# SIGTERM exits in <0.5 s (nothing to save); give it 10 s, then kill it.
stop() { stop_server 200; }

main "$@"
