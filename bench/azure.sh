#!/usr/bin/env bash
# Import benchmark for the Azure Blob adapter against a local Blob server (Azurite,
# tests/emulators/azure.sh): N small blobs, synced through the REST API like a client would.
# Prints blob-mode tasks/s, the no-op re-sync time, presign resolves/s (GET
# /tasks/ID/resolve/?fileuri=... answered with a 303 to a SAS URL, redirects not followed, driven
# by ApacheBench) and the service's RSS.
# Not a pass/fail test: the figures are compared with DESIGN.md's targets by a human. The Blob
# server runs on the same machine and shares its CPUs with the service.
# Env: N (blobs, default 5000), RESOLVES (ab requests, default 5000), CLIENTS (concurrent resolve
# connections, default 8), UPLOAD_THREADS (default 16), BENCH_BIND (default 127.0.0.1:18093).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
RESOLVES=${RESOLVES:-5000}
CLIENTS=${CLIENTS:-8}
UPLOAD_THREADS=${UPLOAD_THREADS:-16}
BIND=${BENCH_BIND:-127.0.0.1:18093}
EMULATOR=azure
# shellcheck source=bench/lib.sh
source bench/lib.sh

build
start_emulator

echo "uploading $N blobs to $STOWAGE_AZURE_ENDPOINT/$STOWAGE_AZURE_CONTAINER ($UPLOAD_THREADS threads) ..."
python3 - "$N" "$UPLOAD_THREADS" <<'EOF'
import base64, email.utils, hashlib, hmac, http.client, os, sys, threading, time, urllib.parse
from concurrent.futures import ThreadPoolExecutor

n, threads = int(sys.argv[1]), int(sys.argv[2])
e = os.environ
endpoint = urllib.parse.urlsplit(e["STOWAGE_AZURE_ENDPOINT"])  # path-style: http://host:port/account
account, key = e["STOWAGE_AZURE_ACCOUNT_NAME"], base64.b64decode(e["STOWAGE_AZURE_ACCOUNT_KEY"])
local = threading.local()  # one keep-alive connection per thread

def put(i):
    path = f"{endpoint.path}/{e['STOWAGE_AZURE_CONTAINER']}/bench/blobs/f{i}.txt"
    body = b"blob %d\n" % i
    for attempt in range(5):
        # Put Blob, signed as in tests/emulators/azure.sh (SharedKey, blob service 2015-02-21+): the
        # 11 standard headers (here Content-Length and Content-Type), the x-ms-* headers, the resource.
        ms = {"x-ms-blob-type": "BlockBlob", "x-ms-date": email.utils.formatdate(usegmt=True),
              "x-ms-version": "2021-08-06"}
        standard = ["", "", str(len(body)), "", "text/plain"] + [""] * 6
        to_sign = "\n".join(["PUT", *standard, *(f"{k}:{v}" for k, v in sorted(ms.items())), f"/{account}{path}"])
        signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
        headers = {**ms, "Content-Type": "text/plain", "Authorization": f"SharedKey {account}:{signature}"}
        try:
            if not hasattr(local, "conn"):
                local.conn = http.client.HTTPConnection(endpoint.netloc, timeout=30)
            local.conn.request("PUT", path, body, headers)
            response = local.conn.getresponse()
            answer = response.read()
            if response.status == 201:
                return
            error = f"HTTP {response.status}: {answer[:300]!r}"
        except (OSError, http.client.HTTPException) as ex:
            error = repr(ex)
            local.__dict__.pop("conn", None)
        time.sleep(0.1 * (attempt + 1))
    raise SystemExit(f"upload of f{i}.txt failed: {error}")

t0 = time.monotonic()
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(put, range(n)))
dt = time.monotonic() - t0
print(f"uploaded {n} blobs in {dt:.1f} s ({n / dt:.0f} PUT/s)")
EOF

start --allow-private-addresses
sleep 1
RSS_IDLE=$(rss_mb VmRSS)

PROJECT=$(create_project)
BLOB=$(create /api/storages/azure "{\"project\": $PROJECT, \"container\": \"$STOWAGE_AZURE_CONTAINER\", \
\"prefix\": \"bench/blobs\", \"account_name\": \"$STOWAGE_AZURE_ACCOUNT_NAME\", \
\"account_key\": \"$STOWAGE_AZURE_ACCOUNT_KEY\", \"azure_endpoint\": \"$STOWAGE_AZURE_ENDPOINT\", \
\"use_blob_urls\": true, \"presign\": true, \"presign_ttl\": 15}")

sync_ms azure "$BLOB" "$N"; BLOB_MS=$SYNC_MS
RSS_AFTER=$(rss_mb VmRSS)
sync_ms azure "$BLOB" 0; NOOP_MS=$SYNC_MS

presign_ab "$PROJECT" '^blob [0-9]+$' "$RESOLVES" "$CLIENTS"
RSS_END=$(rss_mb VmRSS)
RSS_PEAK=$(rss_mb VmHWM)

table 44 "stowage Azure bench ($N blobs, Azurite)" \
    "blob-mode sync" "$BLOB_MS ms" \
    "  tasks/s" "$(rate "$N" "$BLOB_MS")" \
    "no-op re-sync, blob ($N linked)" "$NOOP_MS ms" \
    "presign resolves/s (ab, $RESOLVES, x$CLIENTS)" "$AB_RATE" \
    "RSS idle" "$RSS_IDLE MB" \
    "RSS after the import" "$RSS_AFTER MB" \
    "RSS after resolves" "$RSS_END MB" \
    "RSS peak (VmHWM)" "$RSS_PEAK MB"
