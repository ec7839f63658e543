#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for tcd: packages, bpffs, build.
#   scripts/setup.sh [--target TARGET]...
# builds the given CMake targets, or everything (tcd, the tests, the
# benchmark) without one. Idempotent; run as root. BUILD_DIR (default build)
# says where to build.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --target) [ $# -ge 2 ] || { echo "setup: --target needs a target name" >&2; exit 2; }
              targets+=("$2"); shift 2 ;;
    *) echo "setup: unknown argument $1 (usage: scripts/setup.sh [--target TARGET]...)" >&2; exit 2 ;;
  esac
done

# The Debian packages tcd builds and tests with (one list, also for .ci/run).
read -r -a PACKAGES <<<"$(tr '\n' ' ' < scripts/packages.txt)"
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
cmake --build "$BUILD_DIR" -j2 ${targets[@]+--target "${targets[@]}"}
