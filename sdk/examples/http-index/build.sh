#!/usr/bin/env bash
# Builds the example adapter as a wasm32-wasip2 component and prints the path of the .wasm.
# Cargo's own output goes to stderr, so `WASM=$(./build.sh)` works. Used by conformance.sh and
# by the stowage repository's end-to-end test (tests/tests/example_adapter.rs).
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD

TARGET=wasm32-wasip2
# rustup is only consulted when the target is missing, so warm runs make no network calls.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET" >&2
fi
# Its own target directory (gitignored): this crate is not part of any other workspace.
CARGO_TARGET_DIR="$HERE/target" cargo build --release --target "$TARGET" >&2
echo "$HERE/target/$TARGET/release/stowage_adapter_http_index.wasm"
