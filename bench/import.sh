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
EMULATOR=
# shellcheck source=bench/lib.sh
source bench/lib.sh

build

echo "generating $N blob files and $N JSON task files in $TMP/root ..."
mkdir -p "$TMP/root/blobs" "$TMP/root/tasks" "$TMP/data"
for ((i = 0; i < N; i++)); do
    printf 'blob %d\n' "$i" >"$TMP/root/blobs/f$i.txt"
    printf '{"text": "task %d", "n": %d}\n' "$i" "$i" >"$TMP/root/tasks/t$i.json"
done

start; COLD_MS=$START_MS   # empty data dir: adapters get compiled
stop
start; WARM_MS=$START_MS   # same data dir: compiled adapters come from the cache
sleep 1
RSS_IDLE=$(rss_mb VmRSS)

PROJECT=$(create_project)
BLOB=$(create /api/storages/localfiles/ "{\"project\": $PROJECT, \"path\": \"$TMP/root/blobs\", \"use_blob_urls\": true}")
JSON=$(create /api/storages/localfiles/ "{\"project\": $PROJECT, \"path\": \"$TMP/root/tasks\", \"use_blob_urls\": false}")

sync_ms localfiles "$BLOB" "$N"; BLOB_MS=$SYNC_MS
sync_ms localfiles "$JSON" "$N"; JSON_MS=$SYNC_MS
sync_ms localfiles "$BLOB" 0; NOOP_MS=$SYNC_MS
RSS_AFTER=$(rss_mb VmRSS)

table 40 "stowage import bench ($N per mode)" \
    "blob-mode sync" "$BLOB_MS ms" \
    "  tasks/s" "$(rate "$N" "$BLOB_MS")" \
    "JSON-mode sync" "$JSON_MS ms" \
    "  tasks/s" "$(rate "$N" "$JSON_MS")" \
    "no-op re-sync ($N linked)" "$NOOP_MS ms" \
    "cold start (spawn -> /health)" "$COLD_MS ms" \
    "warm start (spawn -> /health)" "$WARM_MS ms" \
    "RSS idle (warm start)" "$RSS_IDLE MB" \
    "RSS after both imports" "$RSS_AFTER MB"
