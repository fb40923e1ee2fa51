#!/usr/bin/env bash
# Installs what a fresh Debian machine needs to build and test Weir, and nothing more.
# Idempotent: quick when everything is already there.
set -euo pipefail

apt_install() {
  local sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  echo "setup: installing $*" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

need_apt=()
# The rocksdb crate runs bindgen, which needs libclang.
if ! ls /usr/lib/llvm-*/lib/libclang.so /usr/lib/*/libclang-[0-9]*.so* >/dev/null 2>&1; then
  need_apt+=(libclang-dev)
fi
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)

if [ ${#need_apt[@]} -gt 0 ]; then
  apt_install "${need_apt[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi

# Test tools from PyPI go into a venv in the build cache, not into the system's Python:
# - moto's S3-compatible server, for the checkpoint storage tests (weir-checkpoint, test-support);
# - helm-python-sdk (Helm v4's SDK, no helm binary) and kubernetes-validate, for the chart test
#   (operator/tests/chart.rs runs scripts/validate-chart.py).
venv="${WEIR_CACHE:-$HOME/.cache/weir}/venv"
need_pip=()
[ -x "$venv/bin/moto_server" ] || need_pip+=('moto[server]>=5,<6')
[ -x "$venv/bin/kubernetes-validate" ] || need_pip+=('kubernetes-validate>=1.32,<2')
compgen -G "$venv/lib/python3*/site-packages/helm_python" >/dev/null || need_pip+=('helm-python-sdk>=0.2.2,<0.3')
if [ ${#need_pip[@]} -gt 0 ]; then
  if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 ships venv without ensurepip; the failed attempt leaves a half-made venv.
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  echo "setup: installing ${need_pip[*]} into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${need_pip[@]}"
fi
