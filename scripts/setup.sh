#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for tcd: packages, bpffs, build.
# Idempotent; run as root. BUILD_DIR (default build) says where to build.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

PACKAGES=(
  g++ cmake make pkg-config clang llvm libclang-rt-14-dev bpftool
  libbpf-dev libxdp-dev libelf-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev libexpected-dev libfmt-dev libpcap-dev libgtest-dev libyaml-cpp-dev
  iproute2 iputils-ping ethtool util-linux dpkg-dev file man-db groff-base
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

if ! mount | grep -q '^bpf on /sys/fs/bpf '; then
  echo "setup: mounting bpffs at /sys/fs/bpf"
  mount -t bpf bpf /sys/fs/bpf
fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j2
