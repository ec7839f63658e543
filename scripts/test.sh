#!/usr/bin/env bash
# Sets up (packages, bpffs, build) and runs the whole test suite: unit tests,
# test_run fixtures, the differential test, veth/netns end to end, sync tests,
# then the unit tests under sanitizers and the fuzzers (scripts/sanitize.sh).
# Run as root: without root the kernel tests skip (with CI=true they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
"$(pwd)/scripts/setup.sh"
# Every label (unit, kernel, e2e, vm, long): no -L filter here.
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
# Then the unit tests under ASan/UBSan and a bounded libFuzzer run (clang).
"$(pwd)/scripts/sanitize.sh"
