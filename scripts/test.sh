#!/usr/bin/env bash
# Sets up (packages, bpffs, build) and runs the whole test suite: unit tests,
# test_run fixtures, the differential test, veth/netns end to end, sync tests,
# then the unit tests under sanitizers and the fuzzers (scripts/sanitize.sh),
# and, two at a time with those, the kernel and end-to-end tests on three
# Debian kernels in qemu guests (scripts/vm-test.sh), Debian 13's 6.12,
# Debian 12's 6.1 and Debian 11's 5.10: each runs the tests whose kernel
# paths differ, and a share of the rest of the guest suite, so the three
# cover it once between them (the README's "Kernels" says why). TCD_VM=0
# leaves the guests out, saying so; TCD_VM_KERNELS replaces the list
# (scripts/vm-test.sh --kernel syntax; then one chain, beside the host's tests).
# Run as root: without root the kernel tests skip (with CI=true they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
"$(pwd)/scripts/setup.sh"
# The guests: qemu runs both vCPUs of a guest in one host thread, so a guest
# takes one core. The first chain (6.12, then 5.10) starts as soon as the
# build is done, in the background, while the host's tests take the other
# core; the second (6.1) follows the host's tests on that core. The rest of
# the guest suite is cut in five shares: one each for 6.12 and 5.10, three
# for 6.1, so that both chains end at about the same time (each guest's
# kernel paths take about 600 s; the shares about 1,600 s in all). Their output
# goes to $BUILD_DIR/vm-test-*.log, printed as each chain ends. Exit 77 is a
# skip (no qemu, no kernel package, no boot; with CI=true those fail
# instead). TCD_VM_KERNELS replaces both chains with one list.
VM_A=${TCD_VM_KERNELS:-6.12:paths+1/5,5.10:paths+2/5}
VM_B=${TCD_VM_KERNELS:+}
[ -n "${TCD_VM_KERNELS:-}" ] || VM_B=6.1:paths+3-5/5
VM_PID=
rm -f "$BUILD_DIR/vm-test-a.log" "$BUILD_DIR/vm-test-b.log"
guests() {  # LOCK KERNELS: one chain of guests, one after the other
  # A guest's hard limit: 45 minutes (a quiet machine needs about a third;
  # a busy one has slowed a guest fourfold).
  TCD_VM_TIMEOUT=${TCD_VM_TIMEOUT:-2700} TCD_VM_LOCK=$1 BUILD_DIR="$BUILD_DIR" "$(pwd)/scripts/vm-test.sh" --kernel "$2"
}
vm_rc() {  # the status of a chain: 77 (skipped) counts as passed
  [ "$1" = 0 ] || [ "$1" = 77 ]
}
if [ "${TCD_VM:-1}" = 0 ]; then
  echo "test: the guest run (scripts/vm-test.sh) left out: TCD_VM=0"
else
  echo "test: guests $VM_A running in the background, log in $BUILD_DIR/vm-test-a.log"
  guests /run/lock/tcd-vm.lock "$VM_A" > "$BUILD_DIR/vm-test-a.log" 2>&1 &
  VM_PID=$!
  trap '[ -n "$VM_PID" ] && kill "$VM_PID" 2>/dev/null' EXIT
fi
rc=0
# Every label (unit, kernel, e2e, long): no -L filter here.
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@" || rc=1
# Then the unit tests under ASan/UBSan and a bounded libFuzzer run (clang).
"$(pwd)/scripts/sanitize.sh" || rc=1
if [ "${TCD_VM:-1}" != 0 ]; then
  if [ -n "$VM_B" ]; then
    set +e
    guests /run/lock/tcd-vm-2.lock "$VM_B" 2>&1 | tee "$BUILD_DIR/vm-test-b.log"
    vrc=${PIPESTATUS[0]}
    set -e
    vm_rc "$vrc" || rc=1
  fi
  echo "test: waiting for the guests $VM_A"
  vrc=0
  wait "$VM_PID" || vrc=$?
  VM_PID=
  cat "$BUILD_DIR/vm-test-a.log"
  vm_rc "$vrc" || rc=1
  # One table for every guest of the run, last.
  echo
  echo "test: kernels"
  for l in "$BUILD_DIR/vm-test-a.log" "$BUILD_DIR/vm-test-b.log"; do
    if [ -e "$l" ]; then sed -n '/^vm-test: kernels$/,$p' "$l" | sed 1d; fi
  done | awk '!seen[$0]++'
fi
[ "$rc" = 0 ] && echo "test: PASS" || echo "test: FAIL"
exit "$rc"
