#!/usr/bin/env bash
# Label Studio 1.23.2 itself, the reference the differential tests compare stowage with, as a
# plain loopback process with its own SQLite database.
#
#   label-studio.sh install      install the pinned release into a venv in the cache (~3 min once; else instant)
#   label-studio.sh start DIR    start a fresh server (random free port, a user with a random token,
#                                local-files serving under DIR/files) with its files under DIR, write
#                                DIR/env (sourceable) and print it; the first start migrates (~1 min)
#   label-studio.sh stop DIR     stop the server started in DIR (by its pid) and wait for it to exit
#
# DIR/env sets STOWAGE_LS_URL, STOWAGE_LS_TOKEN and STOWAGE_LS_FILES (its document root).
# Pins: tests/emulators/label-studio-requirements.txt.
set -euo pipefail

NAME=label-studio
# shellcheck source=tests/emulators/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
VENV=$CACHE/label-studio-venv
REQ=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/label-studio-requirements.txt

install() {
    # Reinstall only when the pins change (stamp = copy of the requirements last installed).
    if [[ -x $VENV/bin/label-studio ]] && cmp -s "$REQ" "$VENV/.stowage-requirements"; then
        return 0
    fi
    echo "label-studio.sh: installing Label Studio into $VENV" >&2
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ" >&2
    cp "$REQ" "$VENV/.stowage-requirements"
}

start() {
    [[ -x $VENV/bin/label-studio ]] || die "Label Studio is not installed; run: $0 install"
    fresh_dir
    mkdir -p "$DIR/$NAME" "$DIR/files"
    local port token password
    read -r port token password < <(randoms 1 20 12)
    # The token and password go through the environment, not the command line (ps shows argv).
    # Legacy tokens (`Authorization: Token ...`, what the SDK sends) are off by default for new
    # organizations since 1.20; the env turns them on for the organization made at first start.
    (
        cd "$DIR"
        export LABEL_STUDIO_BASE_DATA_DIR=$DIR/$NAME LOCAL_FILES_SERVING_ENABLED=true \
            LOCAL_FILES_DOCUMENT_ROOT=$DIR/files LABEL_STUDIO_USERNAME=admin@example.com \
            LABEL_STUDIO_PASSWORD=$password LABEL_STUDIO_USER_TOKEN=$token \
            LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true SENTRY_DSN= FRONTEND_SENTRY_DSN= \
            COLLECT_ANALYTICS=false LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true
        exec "$VENV/bin/label-studio" start --no-browser --internal-host 127.0.0.1 --port "$port"
    ) >"$DIR/$NAME.log" 2>&1 &
    echo $! >"$DIR/$NAME.pid"
    # Migrations on a fresh database take ~50 s on an idle 2-core machine; allow 6 minutes.
    wait_until 7200 "server not answering /api/projects after 6 minutes" answers "$port" "$token"
    printf 'export STOWAGE_LS_URL=http://127.0.0.1:%s STOWAGE_LS_TOKEN=%s STOWAGE_LS_FILES=%s\n' \
        "$port" "$token" "$DIR/files" >"$DIR/env"
    cat "$DIR/env"
}

answers() { # <port> <token>
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $2" "http://127.0.0.1:$1/api/projects") == 200 ]]
}

# Django's server exits within a second or two on SIGTERM; give it 10 s, then kill it.
stop() { stop_server 200; }

main "$@"
