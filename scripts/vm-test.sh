#!/usr/bin/env bash
# Runs tcd's kernel and end-to-end tests on other kernels: Debian's own
# kernels, booted in qemu (TCG: no KVM needed). The guest mounts this
# machine's root read-only over 9p and chroots into it, so it runs the very
# binaries built here (BUILD_DIR, default build), as root, with lockdown none.
#
#   scripts/vm-test.sh                 the guest suite on Debian 12's current 6.1
#   scripts/vm-test.sh --kernel K      ... on kernel K (repeat it, or K,K,..., for
#                                      several, one after the other):
#                                        5.10  Debian 11 (bullseye)
#                                        6.1   Debian 12 (bookworm)
#                                        6.12  Debian 13 (trixie)
#                                        a suite name (bullseye, bookworm, trixie)
#                                        or any Debian kernel package name,
#                                        e.g. linux-image-6.12.41+deb13-amd64-unsigned
#   scripts/vm-test.sh --kernel K:paths  ... the kernel-paths suite only (K:full,
#                                      the default, the whole guest suite); or
#                                      --suite paths|full for every kernel given
#   scripts/vm-test.sh --kernel K:paths+I/N  ... the kernel paths, then the I-th
#                                      of N shares of the rest of the guest suite;
#                                      K:paths+I-J/N the I-th to J-th (scripts/test.sh:
#                                      6.12:paths+1/5, 5.10:paths+2/5, 6.1:paths+3-5/5)
#   scripts/vm-test.sh --run 'CMD'     run CMD (bash -c) in the guest, from the
#                                      checkout's root; exit with its status
#   scripts/vm-test.sh --help
#
# A kernel series (5.10, 6.1, 6.12) means the newest linux-image-*-amd64-unsigned
# of that Debian release and its security updates (the -unsigned twin of what
# its linux-image-amd64 depends on), looked up in apt lists of this script's
# own (TCD_VM_CACHE/apt/SUITE, refreshed once a day) that point at the archive
# the machine's apt already uses; the system's sources and lists stay as they
# are. Without --kernel, the machine's own apt chooses, as it always has.
#
# It ends with one row per kernel (kernel, lockdown, what ran, passed/failed/
# skipped, seconds), and exits 0 (all passed), 1 (a failure), or 77 (skipped:
# no qemu, no kernel package, no boot; with CI=true each of these is a
# failure instead). A hard timeout bounds each guest and no qemu process
# outlives the script.
#
# Environment:
#   BUILD_DIR          the build to test (default build)
#   TCD_VM_TIMEOUT     hard limit for one guest run, seconds (default 1800)
#   TCD_VM_MEM         guest memory (default 2G); TCD_VM_SMP vCPUs (default 2)
#   TCD_VM_CACHE       kernel cache (default /var/cache/tcd-vm), one directory
#                      per package and version, and the apt lists (apt/SUITE)
#   TCD_VM_KERNEL_PKG  the kernel package when no --kernel is given (default:
#                      the -unsigned twin of what linux-image-amd64 depends on)
#   TCD_VM_MODULES     extra kernel modules to load in the guest (names)
#   TCD_VM_KEEP=1      keep the results directory (its path is printed)
#   TCD_VM_LOCK        the lock file (default /run/lock/tcd-vm.lock); guests
#                      with different locks run at once (scripts/test.sh: two)
# Guest runs are serialised with a lock (TCD_VM_LOCK): a guest takes a whole
# core (TCG, both vCPUs in one host thread).
#
# GUEST SUITE (what runs in the guest, and what is smaller there; the README's
# "Kernels" section says the same):
#   tcd_kernel_tests      all; the differential test with TCD_DIFF_FRAMES=100000
#                         (1000000 on the host): TCG runs BPF many times slower
#   tcd_e2e_tests         all but the host-only tests below
#   tcd_apply_tests       all
#   tcd_completion_tests  all
#   demo                  scripts/demo.sh, checked as ctest's e2e.Demo checks it
# That is :full. :paths is the kernel paths only: tcd_kernel_tests without
# the differential test's other miss actions and its random wirings of port
# instances, with TCD_DIFF_FRAMES=10000,
# the e2e tests in PATHS_E2E below, and the demo. :paths+I/N adds the I-th of
# N shares (gtest's sharding; :paths+I-J/N the I-th to J-th) of the rest: the differential's other miss
# actions and port wirings (10,000 frames), the other e2e tests, the apply tests; N kernels
# with shares 1/N..N/N run each of those once between them. The completions
# make no kernel call at all and run on the host only (and in :full).
# With TCD_TEST_SLOWDOWN=10: tcd_peer's timeouts are 10x longer (no test
# counts work within a time: the live tests' streams last as long as their
# fixed amount of work).
# Host-only e2e tests (HOST_ONLY below; GTEST_FILTER given to this script
# replaces the whole selection): their subject is tcd's own user-space logic
# (input checks, locks and races between tcd processes, recovery after a kill
# at one of tcd's own crash points, trace's memory), and the kernel calls they
# make are the ones the guest's other tests make. They run on the host in
# the same CI run; in TCG they took about 500 of the guest's 1,400 s. The
# kill tests of the steps that differ in the guest stay: attach and load
# --force inside libxdp's dispatcher, multiprog detach, the clsact fallback,
# respecialise. Unit, sync, sanitizer, fuzz and package tests do not touch
# the kernel and run on the host only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# ---------------------------------------------------------------- in the guest
# The suite, run inside the guest (chrooted into the host's root) by the job
# the host writes. Each binary gets its own timeout; results go to $OUT.
guest_suite() {
  local OUT=/tmp/vm fail=0
  : > "$OUT/summary"
  : > "$OUT/counts"
  run_one() {  # name timeout cmd...
    local name=$1 t=$2; shift 2
    local log="$OUT/$name.log" start end rc
    echo "=== guest: $name"
    start=$(date +%s)
    set +e
    timeout -k 10 "$t" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    end=$(date +%s)
    local passed failed skipped
    passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    local what="rc $rc"
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && what="TIMEOUT after ${t}s"
    if [ -n "$passed$failed" ]; then
      what="$what, passed ${passed:-0}, failed ${failed:-0}, skipped ${skipped:-0}"
    fi
    printf '%-22s %s, %ss\n' "$name" "$what" "$((end - start))" >> "$OUT/summary"
    # For the table: a gtest binary's counts, or a script as one test.
    if [ -n "$passed$failed" ]; then
      echo "${passed:-0} ${failed:-0} ${skipped:-0}" >> "$OUT/counts"
    elif [ "$rc" = 0 ]; then echo "1 0 0" >> "$OUT/counts"
    else echo "0 1 0" >> "$OUT/counts"
    fi
    [ "$rc" = 0 ] || fail=1
  }
  local B=$BUILD_DIR/tests
  local suite=${TCD_VM_SUITE:-full}
  local HOST_ONLY=(
    BadInput.ExitStatusOneLineNothingChanged          # argument and input checks
    Concurrency.ParallelWritersSerialise              # tcd's lock between processes
    TreeSafety.WiringRacesTheChildsUnload             # the same lock, child and parent
    TreeSafety.TwoInstancesWiringEachOtherAtOnce      # the same lock, two parents
    TraceCli.MemoryDoesNotGrowWithTheFile             # trace's memory reading a capture
    Tree.ChainPastTheTailCallLimitIsRefused           # the depth arithmetic (live at the limit: ChainingHandlers)
    Crash.LoadKilledAtEveryStep                       # pins and renames in bpffs
    Crash.HandlerLoadKilledAtEveryStep                # the same
    Core.KilledReloadBetweenSwapAndRenameIsAdopted    # the same
    Tree.KilledWhileWiringAChild                      # the same, in a parent
    TreeSafety.ChildReloadKilledAtEveryStep           # the same, parents repointed
  )
  local e2e_filter
  e2e_filter="-$(IFS=:; echo "${HOST_ONLY[*]}")"
  # TCG runs everything about ten times slower: tcd_peer's waits stretch by
  # this factor (tests/tools/tcd_peer.cpp).
  export TCD_TEST_SLOWDOWN=${TCD_TEST_SLOWDOWN:-10}
  # The kernel paths (every kernel in CI): every kernel test but the
  # differential's other miss actions, its generated frames at a tenth of
  # the size, and the e2e tests whose kernel calls differ between kernels.
  local PATHS_E2E=(
    E2E.MainJob E2E.TcEgressCountsAndDrops E2E.HitlessReloadUnderTraffic
    E2E.RespecialiseUnderTrafficLosesNothing VethAgreement.NativeMode
    'MultiprogE2E.*' 'TcxE2E.*' 'Combination.*' 'KindsE2E.*'
    Crash.MultiprogDetachKilled Crash.TcAttachKilledAtEveryStep
    TraceCli.JsonShapeOnALoadedInstanceLeavesLiveCountersAlone TraceCli.FollowsTcdNextHopsForEveryKind
    Tree.RefusedWirings Tree.LiveTrafficThroughTwoLevels
    'MonitorE2E.*'  # perf events, the monitoring build's swap (libxdp's dispatcher too), tcx and clsact
  )
  # Not in the kernel paths: the differential's other miss actions, and its
  # random wirings of port instances (about 100 s each in TCG: up to 28
  # respecialisations of a port dispatcher; Respecialise.* verifies those on
  # every kernel).
  local kernel_rest='Kinds/Differential.*_miss_*:Kinds/Differential.SpecialisedRandomWiring/port_*'
  local paths_e2e paths_filter
  paths_e2e=$(IFS=:; echo "${PATHS_E2E[*]}")
  paths_filter="$paths_e2e-$(IFS=:; echo "${HOST_ONLY[*]}")"
  case "$suite" in
    paths|paths+*/*)
      TCD_DIFF_FRAMES=${TCD_DIFF_FRAMES:-10000} GTEST_FILTER="-$kernel_rest" \
        run_one kernel 1200 "$B/tcd_kernel_tests"
      GTEST_FILTER=${GTEST_FILTER:-$paths_filter} run_one e2e 1500 "$B/tcd_e2e_tests"
      if [ "$suite" != paths ]; then
        # paths+I/N (or I-J/N): then the I-th (to J-th) of N shares of the
        # rest of the guest suite (gtest's own sharding, so the kernels of
        # one run, with shares 1..N between them, cover it once): the
        # differential's other miss actions, the other e2e tests, the apply
        # tests.
        local share=${suite#paths+} i j n first last
        n=${share#*/} share=${share%/*}
        first=${share%-*} last=${share#*-}
        for ((i = first; i <= last; i++)); do
          j="${i}of$n"
          GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$((i - 1)) TCD_DIFF_FRAMES=${TCD_DIFF_FRAMES:-10000} \
            GTEST_FILTER="$kernel_rest" run_one "kernel-share-$j" 1200 "$B/tcd_kernel_tests"
          GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$((i - 1)) GTEST_FILTER="-$paths_e2e:$(IFS=:; echo "${HOST_ONLY[*]}")" \
            run_one "e2e-share-$j" 1500 "$B/tcd_e2e_tests"
          GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$((i - 1)) run_one "apply-share-$j" 600 "$B/tcd_apply_tests"
        done
      fi
      ;;
    *)
      TCD_DIFF_FRAMES=${TCD_DIFF_FRAMES:-100000} run_one kernel 1200 "$B/tcd_kernel_tests"
      GTEST_FILTER=${GTEST_FILTER:-$e2e_filter} run_one e2e 1500 "$B/tcd_e2e_tests"
      run_one apply 600 "$B/tcd_apply_tests"
      run_one completion 600 "$B/tcd_completion_tests"
      ;;
  esac
  run_one demo 600 bash -c '
    log=$(mktemp); trap "rm -f $log" EXIT
    TCD_DEMO_NO_SETUP=1 BUILD_DIR="$1" scripts/demo.sh >"$log" 2>&1 || { cat "$log"; exit 1; }
    cat "$log"
    grep -q "^udp received 500$" "$log" && grep -q "udp with '"'drop'"' wired: received 0 of 100" "$log"' demo "$BUILD_DIR"
  return $fail
}

if [ "${1:-}" = --guest-suite ]; then
  guest_suite
  exit $?
fi

# ---------------------------------------------------------------- on the host
RUN_CMD= ONE= ONE_SPEC= SUITE_ARG=
KERNELS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --run) [ $# -ge 2 ] || { echo "vm-test: --run needs a command" >&2; exit 2; }; RUN_CMD=$2; shift 2 ;;
    --kernel|--kernel=*)
      if [ "$1" = --kernel ]; then
        [ $# -ge 2 ] || { echo "vm-test: --kernel needs a kernel (5.10, 6.1, 6.12 or a package name)" >&2; exit 2; }
        k=$2; shift 2
      else
        k=${1#--kernel=}; shift
      fi
      IFS=, read -ra ks <<< "$k"
      KERNELS+=("${ks[@]}") ;;
    --suite) [ $# -ge 2 ] || { echo "vm-test: --suite needs full or paths" >&2; exit 2; }; SUITE_ARG=$2; shift 2 ;;
    --one) ONE=1 ONE_SPEC=$2; shift 2 ;;  # internal: one kernel, its row to TCD_VM_ROWS
    -h|--help) usage; exit 0 ;;
    *) echo "vm-test: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

# --- several kernels: one guest each, one after the other, then the table
if [ -z "$ONE" ]; then
  for k in "${KERNELS[@]}"; do
    case "${k%%:*}" in
      5.10|6.1|6.12|bullseye|bookworm|trixie|linux-image-*) ;;
      *) echo "vm-test: unknown kernel '$k' (5.10, 6.1, 6.12, a Debian suite or a linux-image-* package)" >&2; exit 2 ;;
    esac
    case "$k" in
      *:*) case "${k#*:}" in
             full|paths) ;;
             paths+[1-9]/[1-9]|paths+[1-9]-[1-9]/[1-9])
               s=${k#*:paths+} n=${k##*/}; s=${s%/*}
               [ "${s%-*}" -le "${s#*-}" ] && [ "${s#*-}" -le "$n" ] ||
                 { echo "vm-test: share ${s}/$n in '$k': I/N or I-J/N with I at most J at most N" >&2; exit 2; } ;;
             *) echo "vm-test: unknown suite in '$k' (full, paths, paths+I/N or paths+I-J/N)" >&2; exit 2 ;;
           esac ;;
    esac
  done
  [ ${#KERNELS[@]} -gt 0 ] || KERNELS=("")
  ROWS=$(mktemp /tmp/tcd-vm-rows.XXXXXX)
  trap 'rm -f "$ROWS"' EXIT
  overall=0 last=0
  for k in "${KERNELS[@]}"; do
    rc=0
    suite=${SUITE_ARG:-full}
    case "$k" in *:*) suite=${k#*:} k=${k%%:*} ;; esac
    if [ -n "$RUN_CMD" ]; then
      TCD_VM_ROWS=$ROWS bash "$0" --one "$k" --run "$RUN_CMD" || rc=$?
    else
      TCD_VM_ROWS=$ROWS TCD_VM_SUITE=$suite bash "$0" --one "$k" || rc=$?
    fi
    last=$rc
    if [ "$rc" = 77 ]; then [ "$overall" = 0 ] && overall=77
    elif [ "$rc" != 0 ]; then overall=1
    fi
  done
  echo
  echo "vm-test: kernels"
  printf '  %-34s %-9s %-26s %6s %6s %7s %7s\n' kernel lockdown ran passed failed skipped seconds
  while IFS=$'\t' read -r kern lock ran pass fail skip secs; do
    printf '  %-34s %-9s %-26s %6s %6s %7s %7s\n' "$kern" "$lock" "$ran" "$pass" "$fail" "$skip" "$secs"
  done < "$ROWS"
  # One kernel: its own status (--run passes the command's through).
  [ ${#KERNELS[@]} = 1 ] && exit "$last"
  exit "$overall"
fi

TIMEOUT=${TCD_VM_TIMEOUT:-1800}
MEM=${TCD_VM_MEM:-2G}
SMP=${TCD_VM_SMP:-2}
CACHE=${TCD_VM_CACHE:-/var/cache/tcd-vm}
ROW_KERNEL=${ONE_SPEC:-default} ROW_RAN=${RUN_CMD:+--run}
ROW_RAN=${ROW_RAN:-suite (${TCD_VM_SUITE:-full})}

# This kernel's row of the table: kernel, lockdown, what ran, passed,
# failed, skipped, seconds (tab-separated).
row() {
  [ -n "${TCD_VM_ROWS:-}" ] || return 0
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROW_KERNEL" "$@" >> "$TCD_VM_ROWS"
}

# A missing prerequisite: a skip, except in CI.
unavailable() {
  if [ "${CI:-}" = true ]; then
    echo "vm-test: FAIL: $* (CI=true: the guest run is required)" >&2
    row - "FAILED: no guest" - - - -
    exit 1
  fi
  echo "vm-test: SKIP: $*" >&2
  row - "skipped: no guest" - - - -
  exit 77
}

[ "$(id -u)" = 0 ] || unavailable "needs root (qemu exports / over 9p; the guest runs as root)"
QEMU=$(command -v qemu-system-x86_64 || true)
[ -n "$QEMU" ] || unavailable "qemu-system-x86_64 not found: install qemu-system-x86 (scripts/packages.txt)"
BUSYBOX=/bin/busybox
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' \
  || unavailable "$BUSYBOX is not a static busybox: install busybox-static (scripts/packages.txt)"
command -v cpio >/dev/null || unavailable "cpio not found: install cpio (scripts/packages.txt)"
if [ -z "$RUN_CMD" ]; then
  for t in tcd tests/tcd_kernel_tests tests/tcd_e2e_tests tests/tcd_apply_tests tests/tcd_completion_tests tests/tcd_peer; do
    [ -x "$BUILD_DIR/$t" ] || { echo "vm-test: FAIL: $BUILD_DIR/$t not built (cmake --build $BUILD_DIR)" >&2; row - FAILED - - - -; exit 1; }
  done
fi
mkdir -p "$CACHE"

# --- apt lists of our own for a Debian suite, pointing at the archive the
# machine's apt already uses (its Debian and security URIs, as apt-get
# indextargets reads them from the system's sources). The system's sources
# and lists are not touched; ours live in $CACHE/apt/SUITE and are refreshed
# when older than a day (an old copy serves when the archive cannot be
# reached).
APT_OPTS=()
archive_uris() {
  apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | sort -u | awk '
    $2 ~ /-security$/ { if (!sec) sec = $1; next }
    $2 ~ /-(updates|backports|proposed-updates)$/ { next }
    $1 ~ /\/debian\/?$/ { if (!main) main = $1 }
    END { print main, sec }'
}
suite_apt() {  # SUITE: sets APT_OPTS
  local suite=$1 d="$CACHE/apt/$1" main sec
  read -r main sec < <(archive_uris) || true
  [ -n "$main" ] || unavailable "the machine's apt has no Debian archive in its sources (apt-get indextargets)"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/sources.list.d" "$d/preferences.d"
  APT_OPTS=(-o "Dir::Etc::sourcelist=$d/sources.list" -o "Dir::Etc::sourceparts=$d/sources.list.d"
            -o "Dir::Etc::preferencesparts=$d/preferences.d" -o "Dir::State::Lists=$d/lists"
            -o "Dir::Cache=$d/cache" -o "APT::Architectures::=amd64" -o "Acquire::Languages=none")
  local want
  want=$(echo "deb $main $suite main"; [ -n "$sec" ] && echo "deb $sec $suite-security main")
  (
    flock 9
    if [ "$(cat "$d/sources.list" 2>/dev/null)" != "$want" ] || [ ! -e "$d/.updated" ] ||
       [ -n "$(find "$d/.updated" -mmin +1440 2>/dev/null)" ]; then
      echo "$want" > "$d/sources.list"
      echo "vm-test: apt lists for $suite ($main${sec:+, $sec}) into $d"
      if apt-get "${APT_OPTS[@]}" -q update > "$d/update.log" 2>&1; then
        touch "$d/.updated"
      elif [ -e "$d/.updated" ]; then
        echo "vm-test: apt-get update for $suite failed (see $d/update.log); using the lists of $(date -r "$d/.updated" +%F)" >&2
      else
        tail -5 "$d/update.log" >&2
        exit 3
      fi
    fi
  ) 9>"$CACHE/.lock" || unavailable "could not fetch the apt lists of $suite ($main; network?)"
}
# linux-image-amd64's Depends names the signed image and its version, which
# the -unsigned twin shares.
newest_kernel() {
  apt-cache "${APT_OPTS[@]}" show --no-all-versions linux-image-amd64 2>/dev/null |
    sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*-amd64\) (= \([^)]*\)).*/\1-unsigned \2/p' | head -1 || true
}
pkg_version() {
  apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -1 || true
}
# The newest kernel already cached whose package matches GLOB (no apt answer).
newest_cached() {
  local c
  c=$(ls -d "$CACHE"/$1_*/.complete 2>/dev/null | sort -V | tail -1)
  [ -n "$c" ] || return 0
  c=$(basename "$(dirname "$c")")
  echo "${c%%_*} ${c#*_}"
}

# --- the kernel, cached by package and version
PKG= VER= SUITE=
case "$ONE_SPEC" in
  5.10|bullseye) SUITE=bullseye GLOB='linux-image-5.10.*' ;;
  6.1|bookworm) SUITE=bookworm GLOB='linux-image-6.1.0-*' ;;
  6.12|trixie) SUITE=trixie GLOB='linux-image-6.12.*' ;;
  linux-image-*) PKG=${ONE_SPEC%%=*}; [ "$PKG" != "$ONE_SPEC" ] && VER=${ONE_SPEC#*=} ;;
  "") PKG=${TCD_VM_KERNEL_PKG:-} GLOB='linux-image-*' ;;
esac
if [ -n "$SUITE" ]; then
  suite_apt "$SUITE"
  read -r PKG VER < <(newest_kernel) || true
  [ -n "$PKG" ] || read -r PKG VER < <(newest_cached "$GLOB") || true
  [ -n "$PKG" ] || unavailable "apt knows no $SUITE kernel (linux-image-amd64 in $CACHE/apt/$SUITE)"
elif [ -z "$ONE_SPEC" ]; then  # the machine's own apt, as before --kernel
  if [ -z "$PKG" ]; then
    read -r PKG VER < <(newest_kernel) || true
    [ -n "$PKG" ] || read -r PKG VER < <(newest_cached "$GLOB") || true
  fi
  [ -n "$PKG" ] || unavailable "apt knows no kernel (linux-image-amd64 -> linux-image-N-amd64; apt-get update?)"
fi
if [ -z "$VER" ]; then
  # A package by name: the machine's apt, then each suite's lists.
  VER=$(pkg_version "$PKG")
  if [ -z "$VER" ] && [ -n "$ONE_SPEC" ] && [ -z "$SUITE" ]; then
    for SUITE in trixie bookworm bullseye; do
      suite_apt "$SUITE"
      VER=$(pkg_version "$PKG")
      [ -n "$VER" ] && break
    done
  fi
  [ -n "$VER" ] || read -r _ VER < <(newest_cached "$PKG") || true
fi
[ -n "$VER" ] || unavailable "apt knows no version of $PKG"
KDIR="$CACHE/${PKG}_$VER"
(
  flock 9
  if [ ! -e "$KDIR/.complete" ]; then
    echo "vm-test: fetching $PKG $VER into $KDIR"
    rm -rf "$KDIR" "$KDIR.tmp"
    mkdir -p "$KDIR.tmp"
    (cd "$KDIR.tmp" && apt-get "${APT_OPTS[@]}" download -q "$PKG=$VER" >/dev/null 2>&1) || { rm -rf "$KDIR.tmp"; exit 3; }
    dpkg-deb -x "$KDIR.tmp"/*.deb "$KDIR.tmp/root"
    mv "$KDIR.tmp/root" "$KDIR" && rm -rf "$KDIR.tmp"
    touch "$KDIR/.complete"
  fi
) 9>"$CACHE/.lock" || unavailable "could not download $PKG=$VER (apt-get download; network?)"
# Modules under lib/modules, or usr/lib/modules (trixie's packages: merged /usr).
MODROOT="$KDIR/lib/modules"
[ -d "$MODROOT" ] || MODROOT="$KDIR/usr/lib/modules"
KVER=$(basename "$(ls -d "$MODROOT"/*/ 2>/dev/null | head -1)")
VMLINUZ="$KDIR/boot/vmlinuz-$KVER"
[ -f "$VMLINUZ" ] || unavailable "no kernel image in $KDIR"
ROW_KERNEL="$KVER ($VER)"

# --- the results directory (the guest's writable share) and the initramfs
RES=$(mktemp -d /tmp/tcd-vm.XXXXXX)
QEMU_PIDFILE="$RES/qemu.pid"
TIMEOUT_PID=
cleanup() {
  local rc=$?
  if [ -s "$QEMU_PIDFILE" ]; then
    local p
    p=$(cat "$QEMU_PIDFILE" 2>/dev/null || true)
    if [ -n "$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = qemu-system-x86 ]; then
      kill "$p" 2>/dev/null || true
      sleep 1
      kill -9 "$p" 2>/dev/null || true
    fi
  fi
  [ -n "$TIMEOUT_PID" ] && kill "$TIMEOUT_PID" 2>/dev/null || true
  if [ "${TCD_VM_KEEP:-}" = 1 ]; then echo "vm-test: results kept in $RES" >&2; else rm -rf "$RES"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

INITRD="$RES/initrd.cpio.gz"
mkdir -p "$RES/initrd/bin" "$RES/initrd/modules" "$RES/initrd/proc" "$RES/initrd/sys" "$RES/initrd/dev" "$RES/share"
cp "$BUSYBOX" "$RES/initrd/bin/busybox"

# Modules in dependency order: the depends= of each .ko (read from its
# .modinfo section), found through modules.order; built-ins are skipped.
# Compressed modules (.ko.xz on trixie's 6.12, .ko.zst) are unpacked here:
# busybox's insmod takes plain ones.
MODDIR="$MODROOT/$KVER"
declare -A MOD_DONE=()
MOD_LIST=()
mod_path() { grep -E "/$1\.ko$|/${1//_/-}\.ko$" "$MODDIR/modules.order" | head -1 || true; }
add_mod() {
  local name=${1//-/_} path dep out
  [ -n "${MOD_DONE[$name]:-}" ] && return 0
  MOD_DONE[$name]=1
  path=$(mod_path "$name")
  if [ -z "$path" ]; then
    grep -qE "/($name|${name//_/-})\.ko$" "$MODDIR/modules.builtin" && return 0
    echo "vm-test: FAIL: kernel module $name not in $PKG" >&2
    row - "FAILED: module $name" - - - -
    exit 1
  fi
  out="$RES/initrd/modules/$(basename "$path")"
  if [ -f "$MODDIR/$path" ]; then cp "$MODDIR/$path" "$out"
  elif [ -f "$MODDIR/$path.xz" ]; then xz -dc "$MODDIR/$path.xz" > "$out"
  elif [ -f "$MODDIR/$path.zst" ]; then zstd -qdc "$MODDIR/$path.zst" > "$out"
  else
    echo "vm-test: FAIL: kernel module $name: no $path(.xz|.zst) in $PKG" >&2
    row - "FAILED: module $name" - - - -
    exit 1
  fi
  for dep in $(tr '\0' '\n' < "$out" | sed -n 's/^depends=//p' | tr ',' ' '); do add_mod "$dep"; done
  MOD_LIST+=("$(basename "$path")")
}
for m in virtio_pci 9pnet_virtio 9p veth sch_ingress cls_bpf ${TCD_VM_MODULES:-}; do add_mod "$m"; done
printf '%s\n' "${MOD_LIST[@]}" > "$RES/initrd/modules/order"

cat > "$RES/initrd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
stty -onlcr 2>/dev/null
for m in $(cat /modules/order); do
  insmod /modules/$m || echo "init: insmod $m failed"
done
R=/newroot
mkdir -p $R
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 tcdroot $R || { echo "init: 9p root mount failed"; poweroff -f; }
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
# What udev would add: /dev/fd (bash process substitution) and std links.
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin; ln -sf /proc/self/fd/1 $R/dev/stdout; ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/tmp
mount -t tmpfs tmpfs $R/run
mount -t bpf bpf $R/sys/fs/bpf
mount -t securityfs securityfs $R/sys/kernel/security 2>/dev/null
mount -t tracefs tracefs $R/sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mkdir -p $R/tmp/vm $R/run/lock
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=262144 tcdres $R/tmp/vm || { echo "init: 9p results mount failed"; poweroff -f; }
# The checkout (and a build directory outside it) over their own shares, at
# their own paths: under /tmp or /run the guest's tmpfs would hide them.
while read -r tag dir; do
  mkdir -p "$R$dir" && mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 "$tag" "$R$dir" ||
    { echo "init: 9p mount of $dir failed"; poweroff -f; }
done < /shares
ip link set lo up
hostname tcd-vm
touch $R/tmp/vm/booted
chroot $R /bin/bash /tmp/vm/job.sh
echo $? > $R/tmp/vm/rc
sync
umount $R/tmp/vm
poweroff -f
EOF
chmod +x "$RES/initrd/init"
SHARE_ARGS=(-virtfs "local,path=$ROOT,mount_tag=tcdsrc,readonly=on,security_model=none,multidevs=remap")
echo "tcdsrc $ROOT" > "$RES/initrd/shares"
case "$BUILD_DIR/" in
  "$ROOT"/*) ;;
  *) SHARE_ARGS+=(-virtfs "local,path=$BUILD_DIR,mount_tag=tcdbuild,readonly=on,security_model=none,multidevs=remap")
     echo "tcdbuild $BUILD_DIR" >> "$RES/initrd/shares" ;;
esac
(cd "$RES/initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD"

# The job: environment, then the suite or the caller's command.
{
  echo "cd $(printf %q "$ROOT")"
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp/home TERM=dumb"
  echo "export BUILD_DIR=$(printf %q "$BUILD_DIR") CI=$(printf %q "${CI:-}")"
  for v in TCD_DIFF_FRAMES TCD_DIFF_SEED TCD_CONCURRENCY_WRITES TCD_TEST_SLOWDOWN GTEST_FILTER TCD_VM_SUITE; do
    [ -n "${!v:-}" ] && echo "export $v=$(printf %q "${!v}")"
  done
  echo "mkdir -p \$HOME"
  echo "sed -n 's/.*\\[\\(.*\\)\\].*/\\1/p' /sys/kernel/security/lockdown > /tmp/vm/lockdown 2>/dev/null"
  echo "echo \"guest: kernel \$(uname -r), lockdown: \$(cat /sys/kernel/security/lockdown 2>/dev/null || echo n/a)\""
  if [ -n "$RUN_CMD" ]; then
    echo "bash -c $(printf %q "$RUN_CMD")"
  else
    echo "exec bash scripts/vm-test.sh --guest-suite"
  fi
} > "$RES/share/job.sh"

# --- boot, one guest at a time, under a hard timeout
VM_LOCK=${TCD_VM_LOCK:-/run/lock/tcd-vm.lock}
exec 8>"$VM_LOCK"
if ! flock -n 8; then
  echo "vm-test: waiting for another guest run to finish (lock $VM_LOCK)"
  flock -w "$TIMEOUT" 8 || { echo "vm-test: FAIL: lock wait timed out" >&2; exit 1; }
fi
echo "vm-test: booting $PKG $VER ($KVER) in qemu (TCG, $SMP vCPUs, $MEM), timeout ${TIMEOUT}s"
start=$(date +%s)
set +e
# One host thread for both vCPUs (thread=single): with a thread per vCPU,
# 6.12 oopsed on an int3 in bpf_dispatcher_xdp_func while an XDP program was
# swapped under traffic (E2E.HitlessReloadUnderTraffic): the kernel's
# text_poke_bp relies on every CPU seeing the patched code after its sync
# IPIs, and a vCPU thread went on running its stale translation. Two vCPUs
# stay (per-CPU maps, concurrent processes); the host's other core runs the
# host's tests meanwhile (scripts/test.sh).
timeout -k 10 "$TIMEOUT" "$QEMU" \
  -nodefaults -no-reboot -display none -monitor none \
  -accel tcg,thread=single -cpu max -smp "$SMP" -m "$MEM" \
  -serial stdio -pidfile "$QEMU_PIDFILE" \
  -kernel "$VMLINUZ" -initrd "$INITRD" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off no_timer_check rdinit=/init" \
  -virtfs local,path=/,mount_tag=tcdroot,readonly=on,security_model=none,multidevs=remap \
  -virtfs "local,path=$RES/share,mount_tag=tcdres,security_model=none" \
  "${SHARE_ARGS[@]}" \
  </dev/null &
TIMEOUT_PID=$!
wait "$TIMEOUT_PID"
qrc=$?
TIMEOUT_PID=
set -e
secs=$(( $(date +%s) - start ))
LOCKDOWN=$(cat "$RES/share/lockdown" 2>/dev/null || true)
LOCKDOWN=${LOCKDOWN:-n/a}
# passed failed skipped, summed over the suite's steps
counts() { awk '{ p += $1; f += $2; s += $3 } END { printf "%d\t%d\t%d", p, f, s }' "$RES/share/counts" 2>/dev/null; }

echo
if [ ! -e "$RES/share/booted" ]; then
  [ "$qrc" = 124 ] && unavailable "the guest did not boot within ${TIMEOUT}s"
  unavailable "the guest did not boot (qemu exit $qrc)"
fi
if [ ! -e "$RES/share/rc" ]; then
  [ "$qrc" = 124 ] && echo "vm-test: FAIL: hard timeout (${TIMEOUT}s) hit; the guest was killed" >&2 \
    || echo "vm-test: FAIL: the guest stopped before the job finished (qemu exit $qrc)" >&2
  [ -s "$RES/share/summary" ] && cat "$RES/share/summary"
  if [ -z "$RUN_CMD" ]; then
    IFS=$'\t' read -r p f sk < <(counts) || true
    row "$LOCKDOWN" "$ROW_RAN, TIMEOUT" "${p:-0}" "$(( ${f:-0} + 1 ))" "${sk:-0}" "$secs"
  else
    row "$LOCKDOWN" "--run, TIMEOUT" - - - "$secs"
  fi
  exit 1
fi
rc=$(cat "$RES/share/rc")
if [ -z "$RUN_CMD" ]; then
  echo "vm-test: guest kernel $KVER ($PKG $VER), ${secs}s in all"
  cat "$RES/share/summary"
  [ "$rc" = 0 ] && echo "vm-test: PASS" || echo "vm-test: FAIL (guest suite exit $rc)"
  IFS=$'\t' read -r p f sk < <(counts) || true
  row "$LOCKDOWN" "$ROW_RAN" "${p:-0}" "${f:-0}" "${sk:-0}" "$secs"
else
  row "$LOCKDOWN" "--run (exit $rc)" - - - "$secs"
fi
exit "$rc"
