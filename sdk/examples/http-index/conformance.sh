#!/usr/bin/env bash
# Runs the stowage adapter conformance suite on this example, in one command:
#   1. builds the adapter (build.sh);
#   2. serves an empty temporary folder with `python3 -m http.server` on a free loopback port;
#   3. runs `stowage conformance`, which writes the suite's test tree into that folder (the
#      adapter is read-only) and checks listing, paging, reads and errors through the adapter;
#   4. stops the server and removes the folder, whatever happened.
# Exits with the suite's status: 0 when every check passes, 1 otherwise (failed checks printed).
#
# The stowage binary: $STOWAGE_BIN, or this repository's release build
# (`cargo build --release -p stowage` at the repository root).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
STOWAGE_BIN=${STOWAGE_BIN:-$REPO/target/release/stowage}
if [[ ! -x $STOWAGE_BIN ]]; then
    echo "no stowage binary at $STOWAGE_BIN: run 'cargo build --release -p stowage' in $REPO, or set STOWAGE_BIN" >&2
    exit 2
fi

WASM=$("$HERE/build.sh")

WORK=$(mktemp -d)
SEED=$WORK/served
mkdir "$SEED"
SERVER=
cleanup() {
    if [[ -n $SERVER ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Port 0: the OS picks a free port, which python prints ("Serving HTTP on 127.0.0.1 port N ...");
# -u so that line is not stuck in a buffer. The log lives outside the served folder.
python3 -u -m http.server --bind 127.0.0.1 --directory "$SEED" 0 >"$WORK/server.log" 2>&1 &
SERVER=$!
PORT=
for _ in $(seq 200); do
    PORT=$(sed -n 's/^Serving HTTP on .* port \([0-9][0-9]*\) .*/\1/p' "$WORK/server.log")
    [[ -n $PORT ]] && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 2; }
    sleep 0.05
done
if [[ -z $PORT ]]; then
    echo "python3 -m http.server did not start" >&2
    exit 2
fi

"$STOWAGE_BIN" conformance "$WASM" \
    --setting "url=http://127.0.0.1:$PORT/" \
    --seed-dir "$SEED" \
    --allow-private-addresses
