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
EMULATOR=redis
# shellcheck source=bench/lib.sh
source bench/lib.sh
DB=1
KEY_PREFIX=bench:tasks:

build
start_emulator
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

start --allow-private-addresses
sleep 1
RSS_IDLE=$(rss_mb VmRSS)

PROJECT=$(create_project)
STORAGE=$(create /api/storages/redis "{\"project\": $PROJECT, \"path\": \"$KEY_PREFIX\", \"host\": \"$STOWAGE_REDIS_HOST\", \
\"port\": \"$STOWAGE_REDIS_PORT\", \"password\": \"$STOWAGE_REDIS_PASSWORD\", \"db\": $DB}")

sync_ms redis "$STORAGE" "$N"; IMPORT_MS=$SYNC_MS
RSS_AFTER=$(rss_mb VmRSS)
sync_ms redis "$STORAGE" 0; NOOP_MS=$SYNC_MS
sync_ms redis "$STORAGE" 0; NOOP2_MS=$SYNC_MS

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

table 44 "stowage Redis bench ($N JSON values)" \
    "load with redis-cli --pipe (not stowage)" "$LOAD_MS ms" \
    "import sync" "$IMPORT_MS ms" \
    "  tasks/s (Label Studio 1.23.2: 154)" "$(rate "$N" "$IMPORT_MS")" \
    "no-op re-sync ($N linked)" "$NOOP_MS ms" \
    "no-op re-sync, again" "$NOOP2_MS ms" \
    "RSS idle" "$RSS_IDLE MB" \
    "RSS after the import" "$RSS_AFTER MB" \
    "RSS at the end" "$RSS_END MB" \
    "RSS peak (VmHWM)" "$RSS_PEAK MB"
