#!/usr/bin/env bash
# Import benchmark for the Redis adapter against a local redis-server (tests/emulators/redis.sh):
# N JSON task values under one key prefix, loaded with `redis-cli --pipe`, then synced through
# the REST API like a client would. Prints the import rate (tasks/s; Label Studio 1.23.2 does
# 154/s on this machine type), the no-op re-sync time and the service's RSS.
# Not a pass/fail test: the figures are compared with DESIGN.md's targets by a human. The Redis
# server runs on the same machine and shares its CPUs with the service.
# Env: N (values, default 10000), BENCH_BIND (default 127.0.0.1:18091).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
BIND=${BENCH_BIND:-127.0.0.1:18091}
URL=http://$BIND
TOKEN=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')
DB=1
KEY_PREFIX=bench:tasks:

adapters/build.sh
cargo build --release -p stowage
tests/emulators/redis.sh install

TMP=$(mktemp -d)
TMP=$(cd "$TMP" && pwd -P)
PID=
stop() { if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; PID=; }
trap 'stop || true; tests/emulators/redis.sh stop "$TMP/redis" || true; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_mb() { awk -v k="$1" '$1 == k":" {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }

tests/emulators/redis.sh start "$TMP/redis" >/dev/null
# shellcheck disable=SC1091
source "$TMP/redis/env"
export REDISCLI_AUTH=$STOWAGE_REDIS_PASSWORD  # not on the command line (ps shows argv)
cli() { redis-cli -h "$STOWAGE_REDIS_HOST" -p "$STOWAGE_REDIS_PORT" --no-auth-warning "$@"; }

# The values, as raw RESP (SELECT, then one SET per task): JSON quotes need no escaping there.
echo "loading $N JSON task values under $KEY_PREFIX (db $DB) with redis-cli --pipe ..."
python3 - "$N" "$DB" "$KEY_PREFIX" >"$TMP/load.resp" <<'EOF'
import sys
n, db, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = sys.stdout.buffer
def command(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        a = a.encode()
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
command("SELECT", db)
for i in range(n):
    command("SET", f"{prefix}{i:05d}", '{"text": "task %d", "n": %d}' % (i, i))
EOF
t0=$(now_ms)
cli --pipe <"$TMP/load.resp" >"$TMP/load.log"
LOAD_MS=$(($(now_ms) - t0))
grep -q "errors: 0, replies: $((N + 1))" "$TMP/load.log" || { cat "$TMP/load.log" >&2; exit 1; }
loaded=$(cli -n "$DB" dbsize) # a fresh server: only these keys
[[ $loaded == "$N" ]] || { echo "redis db $DB holds $loaded keys, want $N" >&2; exit 1; }

mkdir -p "$TMP/root" "$TMP/data"
STOWAGE_TOKEN=$TOKEN target/release/stowage serve --bind "$BIND" --data-dir "$TMP/data" \
    --adapters-dir target/adapters --document-root "$TMP/root" --allow-private-addresses \
    >>"$TMP/server.log" 2>&1 &
PID=$!
until curl -sf -o /dev/null "$URL/health"; do
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/server.log" >&2; echo "stowage died" >&2; exit 1; }
    sleep 0.01
done
sleep 1
RSS_IDLE=$(rss_mb VmRSS)

api() { # METHOD PATH [JSON] -> prints the body; on HTTP >= 400 shows it and fails
    local out code
    out=$(curl -sS -w '\n%{http_code}' -X "$1" -H "Authorization: Token $TOKEN" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} "$URL$2") || return
    code=${out##*$'\n'} out=${out%$'\n'*}
    if ((code >= 400)); then echo "$1 $2 -> HTTP $code: $out" >&2; return 1; fi
    printf '%s' "$out"
}
get() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

sync_ms() { # STORAGE_ID EXPECTED_COUNT; sets SYNC_MS = ms until the sync has finished
    local t0 t1 r status
    t0=$(now_ms)
    r=$(api POST "/api/storages/redis/$1/sync")
    t1=$(now_ms) # before parsing: python start-up is not the service's time
    # LS runs syncs inline without a queue; if this one is queued, poll until it settles.
    while status=$(get status <<<"$r"); [[ $status == queued || $status == in_progress ]]; do
        sleep 0.02
        r=$(api GET "/api/storages/redis/$1")
        t1=$(now_ms)
    done
    SYNC_MS=$((t1 - t0))
    local count
    count=$(get last_sync_count <<<"$r")
    if [[ $status != completed || $count != "$2" ]]; then
        echo "sync of storage $1: status=$status last_sync_count=$count (want completed/$2)" >&2
        echo "$r" >&2
        exit 1
    fi
}

r=$(api POST /api/projects/ '{"title": "bench", "label_config": "<View><Text name=\"text\" value=\"$text\"/></View>"}')
PROJECT=$(get id <<<"$r")
r=$(api POST /api/storages/redis "{\"project\": $PROJECT, \"path\": \"$KEY_PREFIX\", \"host\": \"$STOWAGE_REDIS_HOST\", \
\"port\": \"$STOWAGE_REDIS_PORT\", \"password\": \"$STOWAGE_REDIS_PASSWORD\", \"db\": $DB}")
STORAGE=$(get id <<<"$r")

sync_ms "$STORAGE" "$N"; IMPORT_MS=$SYNC_MS
RSS_AFTER=$(rss_mb VmRSS)
sync_ms "$STORAGE" 0; NOOP_MS=$SYNC_MS
sync_ms "$STORAGE" 0; NOOP2_MS=$SYNC_MS

# The imported tasks are the values: spot-check the total and one task's data.
api GET "/api/tasks/?project=$PROJECT&page_size=1" | python3 -c "
import json, sys
body, n = json.load(sys.stdin), int(sys.argv[1])
data = body['tasks'][0]['data']
if body['total'] != n or data != {'text': f'task {data.get(\"n\")}', 'n': data.get('n')}:
    sys.exit(f'project holds {body[\"total\"]} tasks (want {n}), first task data {data}')
" "$N"
RSS_END=$(rss_mb VmRSS)
RSS_PEAK=$(rss_mb VmHWM)

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n * 1000 / (ms > 0 ? ms : 1) }'; }
printf '\n%-44s %12s\n' "stowage Redis bench ($N JSON values)" "figure"
printf '%-44s %12s\n' "load with redis-cli --pipe (not stowage)" "$LOAD_MS ms" \
    "import sync" "$IMPORT_MS ms" \
    "  tasks/s (Label Studio 1.23.2: 154)" "$(rate "$N" "$IMPORT_MS")" \
    "no-op re-sync ($N linked)" "$NOOP_MS ms" \
    "no-op re-sync, again" "$NOOP2_MS ms" \
    "RSS idle" "$RSS_IDLE MB" \
    "RSS after the import" "$RSS_AFTER MB" \
    "RSS at the end" "$RSS_END MB" \
    "RSS peak (VmHWM)" "$RSS_PEAK MB"
