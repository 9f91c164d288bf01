#!/usr/bin/env bash
# Plugin runtime benchmark: per adapter, compile time (empty cache), cached load, instantiate
# (instance + open) and the round trip of a trivial call; then a warm start of the service with
# every adapter cached, showing from its log that nothing was recompiled.
# Not a pass/fail test: the figures are compared with DESIGN.md's targets by a human.
# Env: BENCH_BIND (default 127.0.0.1:18092).
set -euo pipefail
cd "$(dirname "$0")/.."
BIND=${BENCH_BIND:-127.0.0.1:18092}
EMULATOR=
# shellcheck source=bench/lib.sh
source bench/lib.sh

build
cargo build --release -p stowage --example plugin_bench
echo "== per adapter (release build, this machine)"
target/release/examples/plugin_bench target/adapters/*.wasm

N=$(find target/adapters -name '*.wasm' | wc -l)
echo "== service start with $N adapters"
start; COLD_MS=$START_MS
stop
COMPILED=$(grep -c 'adapter compiled' "$TMP/server.log" || true)
: >"$TMP/server.log"
start; WARM_MS=$START_MS
FROM_CACHE=$(grep -c 'adapter code loaded from cache' "$TMP/server.log" || true)
RECOMPILED=$(grep -c 'adapter compiled' "$TMP/server.log" || true)
echo "cold start: ${COLD_MS} ms ($COMPILED adapters compiled)"
echo "warm start: ${WARM_MS} ms ($FROM_CACHE loaded from cache, $RECOMPILED compiled)"
grep 'adapter code loaded from cache' "$TMP/server.log" | sed 's/\x1b\[[0-9;]*m//g' | head -3
