#!/usr/bin/env bash
# Scale benchmark of the sync engine, side by side with Label Studio 1.23.2's figures measured on
# this machine type (../shared/DESIGN.md, "Performance targets"):
#   - local blob import of N files and of BIG files (folders of 1,000, recursive_scan): tasks/s
#     and the service's peak RSS during the BIG run (fresh process, so its VmHWM is that run's);
#   - no-op re-sync of the N files, against a bare listing of the same folder (a storage whose
#     regex_filter matches nothing: the listing and the filter, no lookups, no writes);
#   - export of ANNOTATIONS annotations to a local export storage (its first sync);
#   - with S3=1, S3 blob import of N keys from Garage (tests/emulators/garage.sh), its no-op
#     re-sync and a bare listing.
# Not a pass/fail test: the figures go to the issue note and are compared with DESIGN.md's targets.
# Env: N (default 100000), BIG (default 1000000; 0 skips), ANNOTATIONS (default 10000), S3 (0|1,
# default 0), BENCH_BIND (default 127.0.0.1:18091).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
BIG=${BIG:-1000000}
ANNOTATIONS=${ANNOTATIONS:-10000}
S3=${S3:-0}
BIND=${BENCH_BIND:-127.0.0.1:18091}
EMULATOR=
((S3)) && EMULATOR=garage
# shellcheck source=bench/lib.sh
source bench/lib.sh
# Label Studio 1.23.2 on this machine type (DESIGN.md): objects imported per second in every
# mode, annotations exported per second.
LS_IMPORT=160
LS_EXPORT=60

build

echo "writing $N files (and $BIG) under $TMP/root ..."
make_files "$TMP/root/n" "$N"
((BIG)) && make_files "$TMP/root/big" "$BIG"

start
PROJECT=$(create_project)
local_storage() { # DIR [extra JSON fields] -> id
    create /api/storages/localfiles/ "{\"project\": $PROJECT, \"path\": \"$1\", \"use_blob_urls\": true, \"recursive_scan\": true${2:+, $2}}"
}
IMPORT=$(local_storage "$TMP/root/n")
BARE=$(local_storage "$TMP/root/n" '"regex_filter": "^$"')
sync_ms localfiles "$IMPORT" "$N"; IMPORT_MS=$SYNC_MS
sync_ms localfiles "$IMPORT" 0; NOOP_MS=$SYNC_MS
sync_ms localfiles "$BARE" 0; BARE_MS=$SYNC_MS
RSS_N=$(rss_mb VmHWM)

# Export: ANNOTATIONS annotations on as many tasks, then an export storage's first sync.
annotate "$PROJECT" "$ANNOTATIONS"
mkdir -p "$TMP/root/export"
export_ms localfiles "{\"project\": $PROJECT, \"path\": \"$TMP/root/export\"}" "$ANNOTATIONS"; EXPORT_MS=$SYNC_MS
stop

rows=(
    "local blob import, $N files" "$(rate "$N" "$IMPORT_MS") tasks/s" "$LS_IMPORT tasks/s"
    "  peak RSS" "$RSS_N MB" ""
    "no-op re-sync, $N linked" "$NOOP_MS ms" ""
    "bare listing, same folder" "$BARE_MS ms" ""
    "export, $ANNOTATIONS annotations" "$(rate "$ANNOTATIONS" "$EXPORT_MS") ann./s" "$LS_EXPORT ann./s"
)

if ((BIG)); then
    # A fresh process: its peak RSS is the big run's.
    rm -rf "$TMP/data"
    start
    PROJECT=$(create_project)
    BIGID=$(local_storage "$TMP/root/big")
    sync_ms localfiles "$BIGID" "$BIG"; BIG_MS=$SYNC_MS
    rows+=("local blob import, $BIG files" "$(rate "$BIG" "$BIG_MS") tasks/s" "$LS_IMPORT tasks/s"
           "  of the $N-file rate" "$(awk -v a="$(rate "$BIG" "$BIG_MS")" -v b="$(rate "$N" "$IMPORT_MS")" 'BEGIN {printf "%.0f%%", 100 * a / b}')" ""
           "  peak RSS" "$(rss_mb VmHWM) MB" "")
    stop
fi

if ((S3)); then
    start_emulator
    PY=${STOWAGE_CACHE:-$HOME/.cache/stowage}/venv/bin/python
    echo "uploading $N objects to $STOWAGE_S3_ENDPOINT/$STOWAGE_S3_BUCKET ..."
    "$PY" - "$N" <<'EOF'
import os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config
n, e = int(sys.argv[1]), os.environ
s3 = boto3.client("s3", endpoint_url=e["STOWAGE_S3_ENDPOINT"], region_name=e["STOWAGE_S3_REGION"],
                  aws_access_key_id=e["STOWAGE_S3_KEY_ID"], aws_secret_access_key=e["STOWAGE_S3_SECRET"],
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                max_pool_connections=32, retries={"max_attempts": 5}))
with ThreadPoolExecutor(32) as pool:
    list(pool.map(lambda i: s3.put_object(Bucket=e["STOWAGE_S3_BUCKET"], Key=f"scale/f{i:07d}.txt", Body=b"x"), range(n)))
EOF
    rm -rf "$TMP/data"
    start --allow-private-addresses
    PROJECT=$(create_project)
    conn="\"project\": $PROJECT, \"bucket\": \"$STOWAGE_S3_BUCKET\", \"prefix\": \"scale\", \"use_blob_urls\": true, \
\"aws_access_key_id\": \"$STOWAGE_S3_KEY_ID\", \"aws_secret_access_key\": \"$STOWAGE_S3_SECRET\", \
\"region_name\": \"$STOWAGE_S3_REGION\", \"s3_endpoint\": \"$STOWAGE_S3_ENDPOINT\""
    S3ID=$(create /api/storages/s3/ "{$conn}")
    S3BARE=$(create /api/storages/s3/ "{$conn, \"regex_filter\": \"^$\"}")
    sync_ms s3 "$S3ID" "$N"; S3_MS=$SYNC_MS
    sync_ms s3 "$S3ID" 0; S3_NOOP_MS=$SYNC_MS
    sync_ms s3 "$S3BARE" 0; S3_BARE_MS=$SYNC_MS
    rows+=("S3 blob import, $N keys" "$(rate "$N" "$S3_MS") tasks/s" "$LS_IMPORT tasks/s"
           "  no-op re-sync" "$S3_NOOP_MS ms" ""
           "  bare listing" "$S3_BARE_MS ms" ""
           "  peak RSS" "$(rss_mb VmHWM) MB" "")
    stop
fi

printf "\n%-36s %16s %18s\n" "stowage scale bench" "stowage" "Label Studio 1.23.2"
printf "%-36s %16s %18s\n" "${rows[@]}"
