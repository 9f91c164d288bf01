#!/usr/bin/env bash
# Import benchmark for the local-files adapter: 10,000 blob files and 10,000 JSON task files,
# synced through the REST API like a client would. Prints tasks/s, no-op re-sync time, cold
# and warm start time (spawn -> /health 200) and the service's RSS.
# Not a pass/fail test: the figures are compared with DESIGN.md's targets by a human.
# Env: N (files per mode, default 10000), BENCH_BIND (default 127.0.0.1:18089).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
BIND=${BENCH_BIND:-127.0.0.1:18089}
URL=http://$BIND
TOKEN=$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')

adapters/build.sh
cargo build --release -p stowage

TMP=$(mktemp -d)
TMP=$(cd "$TMP" && pwd -P)
PID=
stop() { if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; PID=; }
trap 'stop || true; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }

echo "generating $N blob files and $N JSON task files in $TMP/root ..."
mkdir -p "$TMP/root/blobs" "$TMP/root/tasks" "$TMP/data"
for ((i = 0; i < N; i++)); do
    printf 'blob %d\n' "$i" >"$TMP/root/blobs/f$i.txt"
    printf '{"text": "task %d", "n": %d}\n' "$i" "$i" >"$TMP/root/tasks/t$i.json"
done

start() { # sets PID, and START_MS = ms from spawn to the first /health 200
    local t0
    t0=$(now_ms)
    STOWAGE_TOKEN=$TOKEN target/release/stowage serve --bind "$BIND" --data-dir "$TMP/data" \
        --adapters-dir target/adapters --document-root "$TMP/root" >>"$TMP/server.log" 2>&1 &
    PID=$!
    until curl -sf -o /dev/null "$URL/health"; do
        kill -0 "$PID" 2>/dev/null || { cat "$TMP/server.log" >&2; echo "stowage died" >&2; exit 1; }
        sleep 0.005
    done
    START_MS=$(($(now_ms) - t0))
}

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
    r=$(api POST "/api/storages/localfiles/$1/sync")
    t1=$(now_ms) # before parsing: python start-up is not the service's time
    # LS runs syncs inline without a queue; if this one is queued, poll until it settles.
    while status=$(get status <<<"$r"); [[ $status == queued || $status == in_progress ]]; do
        sleep 0.02
        r=$(api GET "/api/storages/localfiles/$1")
        t1=$(now_ms)
    done
    SYNC_MS=$((t1 - t0))
    local count
    count=$(get last_sync_count <<<"$r")
    if [[ $status != completed || $count != "$2" ]]; then
        echo "sync of storage $1: status=$status last_sync_count=$count (want completed/$2)" >&2
        exit 1
    fi
}

start; COLD_MS=$START_MS   # empty data dir: adapters get compiled
stop
start; WARM_MS=$START_MS   # same data dir: compiled adapters come from the cache
sleep 1
RSS_IDLE=$(rss_mb)

r=$(api POST /api/projects/ '{"title": "bench", "label_config": "<View><Text name=\"text\" value=\"$text\"/></View>"}')
PROJECT=$(get id <<<"$r")
r=$(api POST /api/storages/localfiles/ "{\"project\": $PROJECT, \"path\": \"$TMP/root/blobs\", \"use_blob_urls\": true}")
BLOB=$(get id <<<"$r")
r=$(api POST /api/storages/localfiles/ "{\"project\": $PROJECT, \"path\": \"$TMP/root/tasks\", \"use_blob_urls\": false}")
JSON=$(get id <<<"$r")

sync_ms "$BLOB" "$N"; BLOB_MS=$SYNC_MS
sync_ms "$JSON" "$N"; JSON_MS=$SYNC_MS
sync_ms "$BLOB" 0; NOOP_MS=$SYNC_MS
RSS_AFTER=$(rss_mb)

rate() { awk -v n="$N" -v ms="$1" 'BEGIN { printf "%.0f", n * 1000 / (ms > 0 ? ms : 1) }'; }
printf '\n%-40s %12s\n' "stowage import bench ($N per mode)" "figure"
printf '%-40s %12s\n' "blob-mode sync" "$BLOB_MS ms" \
    "  tasks/s" "$(rate "$BLOB_MS")" \
    "JSON-mode sync" "$JSON_MS ms" \
    "  tasks/s" "$(rate "$JSON_MS")" \
    "no-op re-sync ($N linked)" "$NOOP_MS ms" \
    "cold start (spawn -> /health)" "$COLD_MS ms" \
    "warm start (spawn -> /health)" "$WARM_MS ms" \
    "RSS idle (warm start)" "$RSS_IDLE MB" \
    "RSS after both imports" "$RSS_AFTER MB"
