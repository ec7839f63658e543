#!/usr/bin/env bash
# Sets up (packages, bpffs, build) and runs the whole test suite: unit tests,
# test_run fixtures, the differential test, veth/netns end to end, sync tests,
# then the unit tests under sanitizers and the fuzzers (scripts/sanitize.sh),
# then the kernel and end-to-end tests again on three Debian kernels in qemu
# guests (scripts/vm-test.sh): the whole guest suite on Debian 13's 6.12, the
# tests whose kernel paths differ on Debian 12's 6.1 and Debian 11's 5.10
# (the README's "Kernels" says why). TCD_VM=0 leaves the guests out, saying
# so; TCD_VM_KERNELS replaces the list (scripts/vm-test.sh --kernel syntax).
# Run as root: without root the kernel tests skip (with CI=true they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
"$(pwd)/scripts/setup.sh"
# Every label (unit, kernel, e2e, vm, long): no -L filter here.
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
# Then the unit tests under ASan/UBSan and a bounded libFuzzer run (clang).
"$(pwd)/scripts/sanitize.sh"
# Then the guests. Exit 77 is a skip (no qemu, no kernel package, no boot;
# with CI=true those fail instead).
if [ "${TCD_VM:-1}" = 0 ]; then
  echo "test: the guest run (scripts/vm-test.sh) left out: TCD_VM=0"
  exit 0
fi
rc=0
BUILD_DIR="$BUILD_DIR" "$(pwd)/scripts/vm-test.sh" --kernel "${TCD_VM_KERNELS:-6.12:full,6.1:paths,5.10:paths}" || rc=$?
[ "$rc" = 77 ] && rc=0
exit "$rc"
