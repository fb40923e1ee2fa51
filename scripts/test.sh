#!/usr/bin/env bash
# The README's test command: set up the machine, then build and run every test once, in the
# release profile (the same one `weir run` uses, so nothing is built twice).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
cargo build --release --workspace --all-targets --locked
cargo nextest run --release --workspace --locked --no-fail-fast "$@"
