#!/usr/bin/env bash
# Installs what mmi needs on a Debian 12 machine, skipping whatever is already there:
#   - Debian packages: compilers, CMake, and the design-card libraries (FFmpeg, OpenCV, yaml-cpp,
#     SQLite, Catch2, Google Benchmark, nlohmann-json, PCRE2, chromium for the HTML report test);
#   - a project virtualenv (.venv) with the PyPI torch wheel that provides LibTorch, plus the Python
#     packages used to generate reference fixtures.
# Idempotent and quiet when nothing is missing; safe to run before every build.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
PY_PACKAGES=("torch==${TORCH_VERSION}" "transformers==5.17.0" "safetensors" "tokenizers" "numpy")
DEB_PACKAGES=(build-essential cmake pkg-config git python3-venv
  libyaml-cpp-dev libsqlite3-dev sqlite3 catch2 libbenchmark-dev nlohmann-json3-dev libpcre2-dev
  libavcodec-dev libavformat-dev libswscale-dev libavutil-dev libopencv-dev ffmpeg chromium zlib1g-dev
  golang-github-pierrec-lz4-dev)  # the last one ships a public-domain book: the MM-NIAH prose haystack

log() { printf '[setup] %s\n' "$*"; }

install_debian_packages() {
  local missing=()
  for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    log "missing Debian packages: ${missing[*]} (run as root or install them yourself)"; exit 1
  fi
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

venv_has_packages() {
  [ -x .venv/bin/python ] || return 1
  .venv/bin/python - "$TORCH_VERSION" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
assert md.version("torch").split("+")[0] == sys.argv[1]
for name in ("transformers", "safetensors", "tokenizers", "numpy"):
    md.version(name)
PY
}

install_python_packages() {
  venv_has_packages && return 0
  [ -x .venv/bin/python ] || { log "creating .venv"; python3 -m venv .venv; }
  log "installing ${PY_PACKAGES[*]} into .venv (LibTorch comes from the torch wheel)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "${PY_PACKAGES[@]}"
}

install_debian_packages
install_python_packages
