#!/usr/bin/env bash
# Build (once) and run the `weir` command with the given arguments, e.g.
#   scripts/weir.sh run examples/sql/nexmark_q5.sql
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}"
cargo build --release --locked --quiet -p weir-runtime --bin weir --manifest-path "$root/Cargo.toml"
exec "$CARGO_TARGET_DIR/release/weir" "$@"
