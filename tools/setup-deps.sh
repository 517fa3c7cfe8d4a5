#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages. Idempotent; needs root
# (or sudo). Skips apt entirely when everything is already present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  protobuf-compiler libprotobuf-dev
  libboost-dev            # Boost.Interprocess (header-only)
  libzstd-dev libunwind-dev libcli11-dev zlib1g-dev
  libedit-dev             # line editing and history in `pyrewind replay`
  libgtest-dev googletest
  python3 python3-dev python3-pytest python3-protobuf
  chromium                # the `pyrewind html` page's end-to-end test (headless)
  austin                  # tools/bench/sample_bench.py compares the sampler with it
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
echo "setup-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
