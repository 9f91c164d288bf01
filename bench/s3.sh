#!/usr/bin/env bash
# Import benchmark for the S3 adapter against a local S3 server (garage, tests/emulators/garage.sh):
# N small blob objects and N small JSON task objects, synced through the REST API like a client
# would. Prints blob-mode and JSON-mode tasks/s, no-op re-sync time, presign resolves/s
# (GET /tasks/ID/resolve/?fileuri=... answered with a 303, redirects not followed, driven by
# `curl --parallel`), export-sync annotations/s and the service's RSS.
# Not a pass/fail test: the figures are compared with DESIGN.md's targets by a human. The
# S3 server runs on the same machine and shares its CPUs with the service.
# Env: N (objects per mode, default 10000), RESOLVES (default 2000), EXPORTS (annotations
# exported, default N), CLIENTS (concurrent
# resolve connections, default 8), UPLOAD_THREADS (default 32), BENCH_BIND (default
# 127.0.0.1:18090), STOWAGE_CACHE (venv with boto3: tests/run.sh creates it).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
RESOLVES=${RESOLVES:-2000}
EXPORTS=${EXPORTS:-$N}
CLIENTS=${CLIENTS:-8}
UPLOAD_THREADS=${UPLOAD_THREADS:-32}
BIND=${BENCH_BIND:-127.0.0.1:18090}
EMULATOR=garage
# shellcheck source=bench/lib.sh
source bench/lib.sh
PY=${STOWAGE_CACHE:-$HOME/.cache/stowage}/venv/bin/python

"$PY" -c 'import boto3' 2>/dev/null || {
    echo "bench/s3.sh: $PY with boto3 not found; run tests/run.sh once (it installs tests/python/requirements.txt)" >&2
    exit 1
}

build
start_emulator

echo "uploading $N blob objects and $N JSON task objects to $STOWAGE_S3_ENDPOINT/$STOWAGE_S3_BUCKET ($UPLOAD_THREADS threads) ..."
"$PY" - "$N" "$UPLOAD_THREADS" <<'EOF'
import os, sys, time
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config

n, threads = int(sys.argv[1]), int(sys.argv[2])
e = os.environ
s3 = boto3.client("s3", endpoint_url=e["STOWAGE_S3_ENDPOINT"], region_name=e["STOWAGE_S3_REGION"],
                  aws_access_key_id=e["STOWAGE_S3_KEY_ID"], aws_secret_access_key=e["STOWAGE_S3_SECRET"],
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                max_pool_connections=threads, retries={"max_attempts": 5}))
bucket = e["STOWAGE_S3_BUCKET"]
objects = [(f"bench/blobs/f{i}.txt", b"blob %d\n" % i) for i in range(n)]
objects += [(f"bench/tasks/t{i}.json", b'{"text": "task %d", "n": %d}\n' % (i, i)) for i in range(n)]
t0 = time.monotonic()
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects))
dt = time.monotonic() - t0
print(f"uploaded {len(objects)} objects in {dt:.1f} s ({len(objects) / dt:.0f} PUT/s)")
EOF

start --allow-private-addresses
sleep 1
RSS_IDLE=$(rss_mb VmRSS)

conn="\"bucket\": \"$STOWAGE_S3_BUCKET\", \"aws_access_key_id\": \"$STOWAGE_S3_KEY_ID\", \
\"aws_secret_access_key\": \"$STOWAGE_S3_SECRET\", \"region_name\": \"$STOWAGE_S3_REGION\", \
\"s3_endpoint\": \"$STOWAGE_S3_ENDPOINT\""
PROJECT=$(create_project)
BLOB=$(create /api/storages/s3 "{\"project\": $PROJECT, $conn, \"prefix\": \"bench/blobs\", \"use_blob_urls\": true, \"presign\": true, \"presign_ttl\": 15}")
JSON=$(create /api/storages/s3 "{\"project\": $PROJECT, $conn, \"prefix\": \"bench/tasks\", \"use_blob_urls\": false}")

sync_ms s3 "$BLOB" "$N"; BLOB_MS=$SYNC_MS
sync_ms s3 "$JSON" "$N"; JSON_MS=$SYNC_MS
sync_ms s3 "$BLOB" 0; NOOP_BLOB_MS=$SYNC_MS
sync_ms s3 "$JSON" 0; NOOP_JSON_MS=$SYNC_MS
RSS_AFTER=$(rss_mb VmRSS)

# Resolver links of the first RESOLVES blob tasks, as GET /api/tasks/ serves them, fed to
# `curl --parallel` as a config file (one `url` + `output` pair per request). curl 7.88 draws
# its parallel progress meter even with -s, so its stderr goes to a file, shown on failure.
# 10,000 is the service's largest page; blob tasks were created first, so page 1 holds them.
api GET "/api/tasks/?project=$PROJECT&page_size=10000" | python3 -c "
import json, sys
url, want = sys.argv[1], int(sys.argv[2])
links = [t['data']['text'] for t in json.load(sys.stdin)['tasks']
         if isinstance(t['data'].get('text'), str) and t['data']['text'].startswith('/tasks/')][:want]
if len(links) < want:
    sys.exit(f'only {len(links)} resolver links in the task list, want {want}')
for link in links:
    print(f'url = \"{url}{link}\"\noutput = \"/dev/null\"')
" "$URL" "$RESOLVES" >"$TMP/resolve.curl"
# One request first: a 303 to a presigned URL whose bytes are right, else no figure.
first=$(sed -n 's/^url = "\(.*\)"$/\1/p;T;q' "$TMP/resolve.curl")
loc=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H "Authorization: Token $TOKEN" "$first")
[[ ${loc%% *} == 303 ]] || { echo "resolve $first -> $loc (want 303)" >&2; exit 1; }
body=$(curl -sS "${loc#* }")
[[ $body =~ ^blob\ [0-9]+$ ]] || { echo "presigned ${loc#* } -> '$body'" >&2; exit 1; }

RSS_LISTED=$(rss_mb VmRSS)

t0=$(now_ms)
curl -s --parallel --parallel-immediate --parallel-max "$CLIENTS" -H "Authorization: Token $TOKEN" \
    -w '%{http_code}\n' -K "$TMP/resolve.curl" >"$TMP/resolve.codes" 2>"$TMP/resolve.err"  || :  # checked below
RESOLVE_MS=$(($(now_ms) - t0))
codes=$(sort "$TMP/resolve.codes" | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
[[ $codes == "303 x$RESOLVES" ]] || {
    echo "resolve answers: $codes (want 303 x$RESOLVES)" >&2
    tr '\r' '\n' <"$TMP/resolve.err" | grep -v '^--\|^DL%\|^ *$' >&2
    exit 1
}
# curl spends more CPU per request than the service; ApacheBench (Debian apache2-utils), when
# installed, measures the service instead: one link, CLIENTS keep-alive-less connections.
AB_RATE="(no ab)"
if command -v ab >/dev/null; then
    AB_RATE=$(ab -q -n 5000 -c "$CLIENTS" -H "Authorization: Token $TOKEN" "$first" 2>/dev/null |
        awk '/^Requests per second/ {printf "%.0f", $4}')
fi
RSS_END=$(rss_mb VmRSS)

# Export: EXPORTS annotations, then an S3 export storage's first sync (one object each).
annotate "$PROJECT" "$EXPORTS"
export_ms s3 "{\"project\": $PROJECT, $conn, \"prefix\": \"bench/export\"}" "$EXPORTS"; EXPORT_MS=$SYNC_MS
RSS_PEAK=$(rss_mb VmHWM)

table 44 "stowage S3 bench ($N objects per mode, garage)" \
    "blob-mode sync" "$BLOB_MS ms" \
    "  tasks/s" "$(rate "$N" "$BLOB_MS")" \
    "JSON-mode sync" "$JSON_MS ms" \
    "  tasks/s" "$(rate "$N" "$JSON_MS")" \
    "no-op re-sync, blob ($N linked)" "$NOOP_BLOB_MS ms" \
    "no-op re-sync, JSON ($N linked)" "$NOOP_JSON_MS ms" \
    "presign resolves ($RESOLVES, curl x$CLIENTS)" "$RESOLVE_MS ms" \
    "  resolves/s" "$(rate "$RESOLVES" "$RESOLVE_MS")" \
    "presign resolves/s (ab, 5000, x$CLIENTS)" "$AB_RATE" \
    "export sync ($EXPORTS annotations)" "$EXPORT_MS ms" \
    "  annotations/s" "$(rate "$EXPORTS" "$EXPORT_MS")" \
    "RSS idle" "$RSS_IDLE MB" \
    "RSS after both imports" "$RSS_AFTER MB" \
    "RSS after GET /api/tasks/ (page of 10,000)" "$RSS_LISTED MB" \
    "RSS after resolves" "$RSS_END MB" \
    "RSS peak (VmHWM)" "$RSS_PEAK MB"
