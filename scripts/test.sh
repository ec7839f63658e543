#!/usr/bin/env bash
# Sets up (packages, bpffs, build) and runs the whole test suite: unit tests,
# test_run fixtures, the differential test, veth/netns end to end, sync tests.
# Run as root: without root the kernel tests skip (with CI=true they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
"$(pwd)/scripts/setup.sh"
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
