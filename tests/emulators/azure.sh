#!/usr/bin/env bash
# Azurite (https://github.com/Azure/Azurite), the Azure Blob server of the tests, as a plain
# loopback process (blob service only).
#
#   azure.sh install      npm-install azurite 3.35.0 (the last one for node 20) into the cache if
#                         missing (~15 s once; else instant)
#   azure.sh start DIR    start a fresh server (random free port, account `stowageacct` with a random
#                         key) with its data under DIR, create the containers `stowage-test` and
#                         `stowage-conformance`, write DIR/env (sourceable) and print it
#   azure.sh stop DIR     stop the server started in DIR (by its pid) and wait for it to exit
#
# DIR/env sets STOWAGE_AZURE_ENDPOINT (path-style: http://127.0.0.1:PORT/ACCOUNT),
# STOWAGE_AZURE_ACCOUNT_NAME, STOWAGE_AZURE_ACCOUNT_KEY (base64), STOWAGE_AZURE_CONTAINER and
# STOWAGE_AZURE_CONFORMANCE_CONTAINER. Requests need SharedKey or SAS auth (anonymous ones get 403).
# Several servers can run at once. Recipe: /work/shared/reference/emulators.md (Azure Blob).
set -euo pipefail

VERSION=3.35.0
CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
ROOT=$CACHE/azurite
AZURITE=$ROOT/node_modules/.bin/azurite-blob
ACCOUNT=stowageacct
CONTAINER=stowage-test

NAME=azure
# shellcheck source=tests/emulators/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# True when azurite $VERSION is installed (read from its package.json: 0.07 s, where
# `azurite-blob --version` takes 0.6 s).
installed() {
    [[ -x $AZURITE ]] && [[ $(node -p "require(process.argv[1]).version" \
        "$ROOT/node_modules/azurite/package.json" 2>/dev/null) == "$VERSION" ]]
}

install() {
    installed && return 0
    command -v npm >/dev/null || die "npm is missing (needed to install azurite $VERSION)"
    echo "azure.sh: installing azurite $VERSION into $ROOT" >&2
    mkdir -p "$ROOT"
    npm install --prefix "$ROOT" --save-exact --no-audit --no-fund --loglevel=error "azurite@$VERSION" >&2
    installed || die "azurite $VERSION is still missing after npm install"
}

start() {
    [[ -x $AZURITE ]] || die "azurite is not installed; run: $0 install"
    fresh_dir
    mkdir -p "$DIR/azure"
    local port key url
    read -r port < <(randoms 1)
    key=$(python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(64)).decode())')
    url=http://127.0.0.1:$port/$ACCOUNT
    # The binary itself (a node script), so that $! is node's pid. The key goes through the
    # environment, not the command line (ps shows argv). --disableTelemetry: no calls out.
    AZURITE_ACCOUNTS="$ACCOUNT:$key" "$AZURITE" --blobHost 127.0.0.1 --blobPort "$port" \
        --location "$DIR/azure" --disableTelemetry --skipApiVersionCheck --silent >"$DIR/azure.log" 2>&1 &
    echo $! >"$DIR/azure.pid"
    # Any HTTP answer (403 without auth) means it is up.
    wait_until 300 "server not answering after 15 s" curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"
    # One container for the API tests, one kept empty for the adapter conformance suite.
    local c
    for c in "$CONTAINER" stowage-conformance; do
        [[ $(signed "$url" "$ACCOUNT" "$key" PUT "/$c?restype=container" 2>>"$DIR/azure.log") == 201 ]] ||
            { tail -20 "$DIR/azure.log" >&2; die "creating container $c failed (log: $DIR/azure.log)"; }
    done
    cat >"$DIR/env" <<EOF
export STOWAGE_AZURE_ENDPOINT=$url STOWAGE_AZURE_ACCOUNT_NAME=$ACCOUNT STOWAGE_AZURE_ACCOUNT_KEY=$key STOWAGE_AZURE_CONTAINER=$CONTAINER STOWAGE_AZURE_CONFORMANCE_CONTAINER=stowage-conformance
EOF
    cat "$DIR/env"
}

# One SharedKey-signed request with an empty body; prints the HTTP status (the body of an error
# goes to stderr). <path?query> is appended to <endpoint>, whose path is part of the signed resource.
signed() { # <endpoint> <account> <base64 key> <method> <path?query>
    python3 - "$@" <<'EOF'
import base64, email.utils, hashlib, hmac, sys, urllib.error, urllib.parse, urllib.request
endpoint, account, key, method, rest = sys.argv[1:]
url = urllib.parse.urlsplit(endpoint + rest)
ms = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
# urllib adds a form Content-Type to any request with a body (PUT): send, and sign, our own.
headers = {"Content-Type": "application/octet-stream"} if method == "PUT" else {}
# https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key (blob, 2015-02-21+):
# 11 standard headers (Content-Length is empty for an empty body), the x-ms-* headers, then
# /account/path and the query parameters, sorted.
standard = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
            "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"]
resource = f"/{account}{url.path}" + "".join(
    f"\n{k.lower()}:{v}" for k, v in sorted(urllib.parse.parse_qsl(url.query)))
to_sign = "\n".join([method] + [headers.get(h, "") for h in standard]
                    + [f"{k}:{v}" for k, v in sorted(ms.items())] + [resource])
headers.update(ms)
signature = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
headers["Authorization"] = f"SharedKey {account}:{signature}"
request = urllib.request.Request(url.geturl(), data=b"" if method == "PUT" else None, method=method, headers=headers)
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        print(response.status)
except urllib.error.HTTPError as e:
    print(e.read().decode(errors="replace"), file=sys.stderr)
    print(e.code)
EOF
}

# SIGTERM exits in <0.2 s (with telemetry off); give it 10 s, then kill it.
stop() { stop_server 200; }

main "$@"
