#!/usr/bin/env bash
# Task files of any size: one JSONL file of TASKS tasks (default 1,000,000, ~1 GiB: each task
# carries ~1 KiB of text) imported from a local storage in JSON mode, read in ranged parts and
# committed in parts (host/src/sync/import.rs); and FILES small JSON arrays of tiny tasks
# (`[{},{},...]`, default 1 x 16 MiB: 5.6 M tasks; the issue found 881 MB peaks for one, 3 GB for 4).
# Prints tasks/s and the service's peak RSS for each (fresh process per run; goal < 200 MB).
# Not a pass/fail test. Env: TASKS, TASK_BYTES (default 1000), FILES (default 1), FILE_MIB
# (default 16; 0 skips), BENCH_BIND (default 127.0.0.1:18093).
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${TASKS:-1000000}
TASK_BYTES=${TASK_BYTES:-1000}
FILES=${FILES:-1}
FILE_MIB=${FILE_MIB:-16}
BIND=${BENCH_BIND:-127.0.0.1:18093}
EMULATOR=
# shellcheck source=bench/lib.sh
source bench/lib.sh

build
mkdir -p "$TMP/root/big" "$TMP/root/tiny"
echo "writing $TASKS tasks of ~$TASK_BYTES bytes to $TMP/root/big/tasks.jsonl ..."
python3 - "$TMP/root/big/tasks.jsonl" "$TASKS" "$TASK_BYTES" <<'PY'
import json, sys
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pad = "x" * max(0, size - 40)
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({"text": f"task {i} {pad}"}) + "\n")
PY
BYTES=$(stat -c %s "$TMP/root/big/tasks.jsonl")
TINY=0
if ((FILE_MIB)); then
    for i in $(seq "$FILES"); do
        python3 - "$TMP/root/tiny/t$i.json" "$FILE_MIB" <<'PY'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
n = (mib << 20) // 3
with open(path, "w") as f:
    f.write("[" + ",".join(["{}"] * n) + "]")
PY
    done
    TINY=$((FILES * (((FILE_MIB << 20) / 3))))
fi

run() { # DIR EXPECTED -> sets SYNC_MS and RSS
    rm -rf "$TMP/data"
    start
    local project id
    project=$(create_project)
    id=$(create /api/storages/localfiles/ "{\"project\": $project, \"path\": \"$1\"}")
    sync_ms localfiles "$id" "$2"
    RSS=$(rss_mb VmHWM)
    stop
}

run "$TMP/root/big" "$TASKS"; BIG_MS=$SYNC_MS BIG_RSS=$RSS
rows=(
    "JSONL, $TASKS tasks, $((BYTES >> 20)) MiB" "$(rate "$TASKS" "$BIG_MS") tasks/s"
    "  MiB/s" "$(awk -v b="$BYTES" -v ms="$BIG_MS" 'BEGIN {printf "%.1f", b / 1048576 * 1000 / ms}')"
    "  peak RSS" "$BIG_RSS MB"
)
if ((FILE_MIB)); then
    run "$TMP/root/tiny" "$TINY"; TINY_MS=$SYNC_MS TINY_RSS=$RSS
    rows+=("$FILES x $FILE_MIB MiB of [{},...], $TINY tasks" "$(rate "$TINY" "$TINY_MS") tasks/s"
           "  peak RSS" "$TINY_RSS MB")
fi
table 44 "task files of any size (goal: peak RSS < 200 MB)" "${rows[@]}"
