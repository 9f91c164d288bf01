#!/usr/bin/env bash
# Import benchmark for the GCS adapter against a local GCS server (fake-gcs-server,
# tests/emulators/gcs.sh): N small blob objects, synced through the REST API like a client would.
# Prints blob-mode tasks/s, the no-op re-sync time, presign resolves/s (GET
# /tasks/ID/resolve/?fileuri=... answered with a 303 to a V4 signed URL, redirects not followed,
# driven by ApacheBench) and the service's RSS.
# Not a pass/fail test: the figures are compared with DESIGN.md's targets by a human. The GCS
# server runs on the same machine and shares its CPUs with the service. The storage has a
# throwaway service-account key (signed URLs need one); its token_uri is Google's, not the
# endpoint's host, so the adapter sends anonymous API requests and never asks for a token.
# Env: N (objects, default 5000), RESOLVES (ab requests, default 5000), CLIENTS (concurrent
# resolve connections, default 8), UPLOAD_THREADS (default 16), BENCH_BIND (default
# 127.0.0.1:18092).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
RESOLVES=${RESOLVES:-5000}
CLIENTS=${CLIENTS:-8}
UPLOAD_THREADS=${UPLOAD_THREADS:-16}
BIND=${BENCH_BIND:-127.0.0.1:18092}
EMULATOR=gcs
# shellcheck source=bench/lib.sh
source bench/lib.sh

build
start_emulator

echo "uploading $N blob objects to $STOWAGE_GCS_ENDPOINT/$STOWAGE_GCS_BUCKET ($UPLOAD_THREADS threads) ..."
python3 - "$N" "$UPLOAD_THREADS" <<'EOF'
import http.client, os, sys, threading, time, urllib.parse
from concurrent.futures import ThreadPoolExecutor

n, threads = int(sys.argv[1]), int(sys.argv[2])
endpoint = urllib.parse.urlsplit(os.environ["STOWAGE_GCS_ENDPOINT"])
path = f"{endpoint.path}/upload/storage/v1/b/{os.environ['STOWAGE_GCS_BUCKET']}/o?uploadType=media&name="
local = threading.local()  # one keep-alive connection per thread

def put(i):
    for attempt in range(5):
        try:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection(endpoint.netloc, timeout=30)
            local.conn.request("POST", f"{path}bench%2Fblobs%2Ff{i}.txt", b"blob %d\n" % i,
                               {"Content-Type": "text/plain"})
            response = local.conn.getresponse()
            body = response.read()
            if response.status == 200:
                return
            error = f"HTTP {response.status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as e:
            error = repr(e)
            local.__dict__.pop("conn", None)
        time.sleep(0.1 * (attempt + 1))
    raise SystemExit(f"upload of f{i}.txt failed: {error}")

t0 = time.monotonic()
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(put, range(n)))
dt = time.monotonic() - t0
print(f"uploaded {n} objects in {dt:.1f} s ({n / dt:.0f} uploads/s)")
EOF

# A throwaway service-account key: signed URLs are signed with it (fake-gcs-server checks none).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/key.pem" 2>/dev/null

start --allow-private-addresses
sleep 1
RSS_IDLE=$(rss_mb VmRSS)

PROJECT=$(create_project)
settings=$(python3 - "$PROJECT" "$TMP/key.pem" <<'EOF'
import json, os, sys
project, key = int(sys.argv[1]), open(sys.argv[2]).read()
credentials = {"type": "service_account", "client_email": "bench@stowage-bench.iam.gserviceaccount.com",
               "private_key": key, "token_uri": "https://oauth2.googleapis.com/token"}
print(json.dumps({"project": project, "bucket": os.environ["STOWAGE_GCS_BUCKET"], "prefix": "bench/blobs",
                  "gcs_endpoint": os.environ["STOWAGE_GCS_ENDPOINT"],
                  "google_application_credentials": json.dumps(credentials),
                  "use_blob_urls": True, "presign": True, "presign_ttl": 15}))
EOF
)
BLOB=$(create /api/storages/gcs "$settings")

sync_ms gcs "$BLOB" "$N"; BLOB_MS=$SYNC_MS
RSS_AFTER=$(rss_mb VmRSS)
sync_ms gcs "$BLOB" 0; NOOP_MS=$SYNC_MS

presign_ab "$PROJECT" '^blob [0-9]+$' "$RESOLVES" "$CLIENTS"
RSS_END=$(rss_mb VmRSS)
RSS_PEAK=$(rss_mb VmHWM)

table 44 "stowage GCS bench ($N objects, fake-gcs-server)" \
    "blob-mode sync" "$BLOB_MS ms" \
    "  tasks/s" "$(rate "$N" "$BLOB_MS")" \
    "no-op re-sync, blob ($N linked)" "$NOOP_MS ms" \
    "presign resolves/s (ab, $RESOLVES, x$CLIENTS)" "$AB_RATE" \
    "RSS idle" "$RSS_IDLE MB" \
    "RSS after the import" "$RSS_AFTER MB" \
    "RSS after resolves" "$RSS_END MB" \
    "RSS peak (VmHWM)" "$RSS_PEAK MB"
