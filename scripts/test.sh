#!/usr/bin/env bash
# The README's test command: set up the machine, then build and run every test once, in the
# release profile (the same one `weir run` uses, so nothing is built twice).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"

# Cargo never deletes what it no longer needs from a reused build cache (stale test binaries,
# incremental sessions of earlier sources), so the cache grows with every change until the disk
# is full and the build fails. Below WEIR_MIN_FREE_GB free, drop the incremental sessions; if
# that is not enough, the whole cache (a cold build is slower, but it fits in CI's time).
min_free_gb="${WEIR_MIN_FREE_GB:-30}"
free_gb() { df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print int($4 / 1048576) }'; }
mkdir -p "$CARGO_TARGET_DIR"
if [ "$(free_gb)" -lt "$min_free_gb" ]; then
  echo "test: less than $min_free_gb GB free; removing incremental build sessions" >&2
  rm -rf "$CARGO_TARGET_DIR/release/incremental"
fi
if [ "$(free_gb)" -lt "$min_free_gb" ]; then
  echo "test: still less than $min_free_gb GB free; removing the build cache $CARGO_TARGET_DIR" >&2
  rm -rf "$CARGO_TARGET_DIR"
  mkdir -p "$CARGO_TARGET_DIR"
fi
cargo build --release --workspace --all-targets --locked
cargo nextest run --release --workspace --locked --no-fail-fast "$@"
