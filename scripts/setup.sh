#!/usr/bin/env bash
# Installs what a fresh Debian machine needs to build and test Weir, and nothing more.
# Idempotent: quick when everything is already there.
set -euo pipefail

need_apt=()
# The rocksdb crate runs bindgen, which needs libclang.
if ! ls /usr/lib/llvm-*/lib/libclang.so /usr/lib/*/libclang-[0-9]*.so* >/dev/null 2>&1; then
  need_apt+=(libclang-dev)
fi
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)

if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  echo "setup: installing ${need_apt[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi
