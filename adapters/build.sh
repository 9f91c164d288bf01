#!/usr/bin/env bash
# Build the storage adapters (wasm32-wasip2 components) and lay them out for the service:
#   target/adapters/       real adapters only (what `stowage serve` loads in production/demo)
#   target/test-adapters/  real adapters + test-only ones (loaded by the test suites)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=wasm32-wasip2
REAL=(localfs s3 redis gcs azure)
TEST_ONLY=(test-misbehave test-cacheprobe test-legacy)

# rustup is only consulted when the target is missing, so warm runs make no network calls.
if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

pkgs=()
for a in "${REAL[@]}"; do pkgs+=(-p "stowage-adapter-$a"); done
for a in "${TEST_ONLY[@]}"; do pkgs+=(-p "stowage-$a"); done
cargo build --release --target "$TARGET" "${pkgs[@]}"

# Copy only when the bytes changed: keeps mtimes stable, so a warm rebuild leaves the
# service's compiled-component cache untouched.
install_wasm() { # <crate name> <dest dir>
    local src="target/$TARGET/release/${1//-/_}.wasm"
    mkdir -p "$2"
    cmp -s "$src" "$2/${src##*/}" || cp "$src" "$2/"
}
for a in "${REAL[@]}"; do
    install_wasm "stowage-adapter-$a" target/adapters
    install_wasm "stowage-adapter-$a" target/test-adapters
done
for a in "${TEST_ONLY[@]}"; do install_wasm "stowage-$a" target/test-adapters; done
