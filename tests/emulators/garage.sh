#!/usr/bin/env bash
# Garage (https://garagehq.deuxfleurs.fr), the S3 server of the tests, as a plain loopback process.
#
#   garage.sh install      build garage 2.5.0 into the cache if it is missing (~15 min once; else instant)
#   garage.sh start DIR    start a fresh single-node server with data under DIR, create the bucket
#                          `stowage-test` and a key, write DIR/env (sourceable) and print it
#   garage.sh stop DIR     stop the server started in DIR (by its pid) and wait for it to exit
#
# DIR/env sets STOWAGE_S3_ENDPOINT, STOWAGE_S3_KEY_ID, STOWAGE_S3_SECRET, STOWAGE_S3_BUCKET and
# STOWAGE_S3_REGION. Ports are picked free on 127.0.0.1, so several servers can run at once.
# Recipe: /work/shared/reference/emulators.md (garage).
set -euo pipefail

VERSION=2.5.0
CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
ROOT=$CACHE/garage
GARAGE=${GARAGE_BIN:-$ROOT/bin/garage}
BUCKET=stowage-test
# Not us-east-1 (the region a storage without region_name starts from), so tests see the
# region found (GetBucketLocation) and a wrong region_name refused.
REGION=garage

NAME=garage
# shellcheck source=tests/emulators/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install() {
    if [[ -x $GARAGE ]] && "$GARAGE" --version 2>/dev/null | grep -q "$VERSION"; then
        return 0
    fi
    echo "garage.sh: building garage $VERSION (takes ~15 minutes on 2 cores)" >&2
    CARGO_TARGET_DIR=$CACHE/garage-target cargo install "garage@$VERSION" --locked --root "$ROOT"
}

# Waits up to 5 s for `curl` on the admin health URL to succeed (with -f: 200 only).
wait_health() { # <admin port> <curl flags>
    # shellcheck disable=SC2086 # $2: the curl flags
    wait_until 100 "server not healthy after 5 s" curl $2 -o /dev/null --max-time 1 "http://127.0.0.1:$1/health"
}

start() {
    [[ -x $GARAGE ]] || die "garage is not installed; run: $0 install"
    fresh_dir
    # Free ports, the key id (GK + 24 hex), the 64-hex secret key and the RPC secret.
    read -r S3_PORT RPC_PORT ADMIN_PORT KEY_ID SECRET RPC_SECRET < <(randoms 3 12 32 32)
    KEY_ID=GK$KEY_ID
    cat >"$DIR/garage.toml" <<EOF
metadata_dir = "$DIR/garage/meta"
data_dir = "$DIR/garage/data"
db_engine = "sqlite"
replication_factor = 1
metadata_fsync = false
data_fsync = false
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$RPC_SECRET"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
admin_token = "test-admin-token"
EOF
    local g=("$GARAGE" -c "$DIR/garage.toml")
    RUST_LOG=garage=warn "${g[@]}" server >"$DIR/garage.log" 2>&1 &
    echo $! >"$DIR/garage.pid"
    wait_health "$ADMIN_PORT" -s           # any answer: 503 "Quorum is not available" until the layout exists
    {
        local node
        node=$("${g[@]}" node id -q | cut -d@ -f1)
        "${g[@]}" layout assign -z dc1 -c 1G "$node"
        "${g[@]}" layout apply --version 1
        "${g[@]}" key import --yes -n stowage "$KEY_ID" "$SECRET"
        # One bucket for the API tests, one kept empty for the adapter conformance suite.
        for b in "$BUCKET" stowage-conformance; do
            "${g[@]}" bucket create "$b"
            "${g[@]}" bucket allow --read --write --owner "$b" --key stowage
        done
    } >>"$DIR/garage.log" 2>&1 || { tail -20 "$DIR/garage.log" >&2; die "bootstrap failed (log: $DIR/garage.log)"; }
    wait_health "$ADMIN_PORT" -sf          # 200 "Garage is fully operational"
    cat >"$DIR/env" <<EOF
export STOWAGE_S3_ENDPOINT=http://127.0.0.1:$S3_PORT STOWAGE_S3_KEY_ID=$KEY_ID STOWAGE_S3_SECRET=$SECRET STOWAGE_S3_BUCKET=$BUCKET STOWAGE_S3_CONFORMANCE_BUCKET=stowage-conformance STOWAGE_S3_REGION=$REGION
EOF
    cat "$DIR/env"
}

# Garage takes 2-5 s to exit on SIGTERM; give it 15 s, then kill it.
stop() { stop_server 300; }

main "$@"
