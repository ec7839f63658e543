#!/usr/bin/env bash
# Sets up, then runs tcd's main job on a veth pair between two network
# namespaces it makes: attach, wire tcp and udp, send traffic, print stats,
# and clean everything up again (also on failure or Ctrl-C). It builds only
# what it runs, tcd and its traffic tool tcd_peer (scripts/test.sh builds the
# rest); TCD_DEMO_NO_SETUP=1 skips the setup and uses BUILD_DIR as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
[ -n "${TCD_DEMO_NO_SETUP:-}" ] || "$(pwd)/scripts/setup.sh" --target tcd --target tcd_peer >/dev/null

TCD="$BUILD_DIR/tcd"
PEER="$BUILD_DIR/tests/tcd_peer"
# Names of this run's own (the pid), so two demos at once do not meet.
NS_A=tcd-demo-a-$$ NS_B=tcd-demo-b-$$
export TCD_PIN_DIR=/sys/fs/bpf/tcd-demo-$$

cleanup() {
  "$TCD" -q unload 2>/dev/null || true
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  rm -f "/run/tcd/_sys_fs_bpf_tcd-demo-$$.lock"  # the lock file tcd leaves for the pin dir
}
trap cleanup EXIT
cleanup

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
# Until a receiver started in the background says "ready" in FILE (its
# socket is bound), for at most 30 s: sending before that loses datagrams.
ready() {
  local i
  for i in $(seq 300); do grep -q '^ready' "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: the receiver did not start ($1)" >&2; return 1
}
run() { say "$*"; "$@"; }

ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add veth-a netns "$NS_A" type veth peer name veth-b netns "$NS_B"
ip -n "$NS_A" addr add 10.250.0.1/24 dev veth-a
ip -n "$NS_B" addr add 10.250.0.2/24 dev veth-b
for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set veth-a up
ip -n "$NS_B" link set veth-b up
echo "veth pair: veth-a (10.250.0.1, netns $NS_A) <-> veth-b (10.250.0.2, netns $NS_B)"
echo "pin dir:   $TCD_PIN_DIR"

run "$TCD" attach veth-b --netns "$NS_B"
run "$TCD" map set tcp tcp_handler
run "$TCD" map set udp udp_handler
run "$TCD" status

say "traffic: 5 pings, 64 KiB over TCP, 500 UDP datagrams from $NS_A to $NS_B"
nsenter --net=/run/netns/"$NS_A" ping -q -c 5 -i 0.1 10.250.0.2 | tail -2
"$PEER" tcp-listen --netns "$NS_B" --port 5001 --timeout-ms 3000 > /tmp/tcd-demo-tcp.$$ &
ready /tmp/tcd-demo-tcp.$$
"$PEER" tcp-send --netns "$NS_A" --to 10.250.0.2 --port 5001 --bytes 65536 --timeout-ms 3000
wait
"$PEER" udp-recv --netns "$NS_B" --port 5002 --count 500 --timeout-ms 1000 > /tmp/tcd-demo-udp.$$ &
ready /tmp/tcd-demo-udp.$$
"$PEER" udp-send --netns "$NS_A" --to 10.250.0.2 --port 5002 --count 500 --interval-us 100
wait
grep received /tmp/tcd-demo-udp.$$ | sed 's/^/udp /'
rm -f /tmp/tcd-demo-tcp.$$ /tmp/tcd-demo-udp.$$

run "$TCD" stats
echo "(icmp has no handler: its packets took the miss action, pass, and count as missed)"
run "$TCD" map set udp drop
"$PEER" udp-recv --netns "$NS_B" --port 5002 --count 100 --timeout-ms 500 > /tmp/tcd-demo-udp.$$ &
ready /tmp/tcd-demo-udp.$$
"$PEER" udp-send --netns "$NS_A" --to 10.250.0.2 --port 5002 --count 100 >/dev/null
wait
echo "udp with 'drop' wired: $(grep received /tmp/tcd-demo-udp.$$) of 100"
rm -f /tmp/tcd-demo-udp.$$
run "$TCD" -j stats
run "$TCD" unload
echo
echo "demo done: namespaces and pins are removed on exit"
