#!/usr/bin/env bash
# Load benchmark: latency of GET /health, GET /api/projects and GET /api/tasks/{id} under CLIENTS
# concurrent connections (oha, from crates.io) while one sync imports FILES local files, each
# endpoint for SECONDS_EACH seconds in turn. Prints p50/p99 (ms), requests/s and the share of
# answers that were 200, next to the goals of issue 18 (p99 < 100 ms for /health, < 500 ms for
# the others) and whether the sync was still running when each endpoint's run ended.
# Not a pass/fail test: the figures go to the issue note.
# Env: FILES (default 1000000), CLIENTS (default 500), SECONDS_EACH (default 10), BENCH_BIND
# (default 127.0.0.1:18092), OHA (an oha binary; default: installed once with
# `cargo install oha --locked` under STOWAGE_CACHE, ~/.cache/stowage).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-1000000}
CLIENTS=${CLIENTS:-500}
SECONDS_EACH=${SECONDS_EACH:-10}
BIND=${BENCH_BIND:-127.0.0.1:18092}
CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
OHA=${OHA:-$CACHE/oha/bin/oha}
EMULATOR=
# shellcheck source=bench/lib.sh
source bench/lib.sh

if [[ ! -x $OHA ]]; then
    echo "installing oha into $CACHE/oha (once, a few minutes) ..."
    cargo install oha --locked --root "$CACHE/oha"
fi
build

echo "writing $FILES files under $TMP/root/load ..."
make_files "$TMP/root/load" "$FILES"
start
PROJECT=$(create_project)
TASK=$(api POST "/api/projects/$PROJECT/import" '[{"text": "probe"}]' |
    python3 -c "import json, sys; print(json.load(sys.stdin)['task_ids'][0])")
STORAGE=$(create /api/storages/localfiles/ "{\"project\": $PROJECT, \"path\": \"$TMP/root/load\", \
\"use_blob_urls\": true, \"recursive_scan\": true}")
t0=$(now_ms)
api POST "/api/storages/localfiles/$STORAGE/sync" >/dev/null

rows=()
for path in /health /api/projects "/api/tasks/$TASK"; do
    "$OHA" -z "${SECONDS_EACH}s" -c "$CLIENTS" --no-tui --output-format json \
        -H "Authorization: Token $TOKEN" "$URL$path" >"$TMP/oha.json"
    running=$(api GET "/api/storages/localfiles/$STORAGE" | python3 -c \
        "import json, sys; s = json.load(sys.stdin); print(s['status'], s['meta'].get('tasks_created', 0))")
    # shellcheck disable=SC2207
    figures=($(python3 - "$TMP/oha.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
p, codes = d["latencyPercentiles"], d["statusCodeDistribution"]
ok = codes.get("200", 0) / max(1, sum(codes.values()))
print("%.1f %.1f %.0f %.1f%%" % (p["p50"] * 1e3, p["p99"] * 1e3, d["summary"]["requestsPerSec"], 100 * ok))
EOF
    ))
    rows+=("GET $path  p50 / p99" "${figures[0]} / ${figures[1]} ms"
           "  requests/s, answered 200" "${figures[2]}, ${figures[3]}"
           "  sync then (status, tasks created)" "$running")
done
while status=$(api GET "/api/storages/localfiles/$STORAGE" | get status); [[ $status == queued || $status == in_progress ]]; do
    sleep 0.2
done
SYNC_MS=$(($(now_ms) - t0))
rows+=("sync of $FILES files, under that load" "$SYNC_MS ms ($status)"
       "  tasks/s" "$(rate "$FILES" "$SYNC_MS")"
       "peak RSS" "$(rss_mb VmHWM) MB")
table 44 "stowage load bench ($CLIENTS clients, ${SECONDS_EACH}s per endpoint)" "${rows[@]}"
echo "goals (issue 18): p99 < 100 ms for /health, < 500 ms for /api/projects and /api/tasks/{id}"
