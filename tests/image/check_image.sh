#!/usr/bin/env bash
# e2e.Image: tcd's container image, built afresh from this build's .deb with
# scripts/image.sh, run with rootful podman as deploy/daemonset.yaml runs it
# (privileged, host network, /sys/fs/bpf bind-mounted rshared, the config
# as a ConfigMap volume lays it out at /etc/tcd, /run/tcd for the locks)
# against a veth pair the test makes:
#   - the init container's apply loads and attaches the description;
#   - the metrics container serves /metrics: UDP sent over the pair is counted
#     and scraped over HTTP, with concurrent scrapes, 404, 405, HEAD, the
#     probes' paths, and a second server refused the port in use;
#   - stopping it (SIGTERM) exits 0 and leaves the datapath counting;
#   - a second apply container finds nothing to do;
#   - the DaemonSet's own apply loop (its script, cut from the manifest)
#     applies a changed ConfigMap, drops readiness on a broken one and
#     leaves the datapath as it was, and exits 0 on SIGTERM.
# Needs root, podman, runc, mmdebstrap and curl: skips without them (exit 77),
# fails with CI=true. The base image localhost/tcd-base:bookworm is kept for
# the next build (scripts/image.sh); the tcd image, containers, netns, veth,
# pins and lock file the test made are removed, also on failure.
#   tests/image/check_image.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
skip() {
  if [ "${CI:-}" = true ]; then echo "FAIL (CI=true, so no skip): $*"; exit 1; fi
  echo "skipped: $*"; exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (rootful podman)"
for t in podman runc mmdebstrap curl; do command -v "$t" >/dev/null || skip "$t is not installed (scripts/packages.txt)"; done
TCD=$build/tcd
PEER=$build/tests/tcd_peer
slow=${TCD_TEST_SLOWDOWN:-1}

id=$$
tag=localhost/tcd-imgtest-$id:test
ns=tcdimg$id
host_if=tcdi${id}h
ns_if=tcdi${id}n
pin=/sys/fs/bpf/tcdimg-$id
lock=/run/tcd/_sys_fs_bpf_tcdimg-$id.lock
c_metrics=tcdimg-$id-metrics
c_loop=tcdimg-$id-loop
work=$(mktemp -d)
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf

cleanup() {
  set +e
  podman rm -f -t 0 "$c_metrics" "$c_loop" >/dev/null 2>&1
  podman rmi -f "$tag" >/dev/null 2>&1
  "$TCD" -q -d "$pin" unload >/dev/null 2>&1
  ip link del "$host_if" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -f "$lock"
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }
# Every container runs on the host's network or none: podman's bridge
# network would switch on IP forwarding and add firewall rules.
forwarding=$(sysctl -n net.ipv4.ip_forward)
t0=$(date +%s.%N)
mark=$t0
phase() {  # prints how long the phase before took
  local now; now=$(date +%s.%N)
  printf '%-58s %6.1f s\n' "$1" "$(awk -v a="$now" -v b="$mark" 'BEGIN{print a-b}')"
  mark=$now
}
# Polls "$@" until it succeeds, for at most $1 seconds (times the slowdown).
until_ok() {
  local limit=$(( $1 * slow * 10 )) i=0; shift
  until "$@"; do
    i=$((i + 1)); [ $i -lt $limit ] || return 1
    sleep 0.1
  done
}

# ---- the manifest names what this test runs ------------------------------
version=$("$TCD" --version | awk '{print $2}')
ds=$src/deploy/daemonset.yaml
images=$(sed -n 's/^ *image: *\([^ ]*\).*/\1/p' "$ds" | sort -u)
[ "$images" = "localhost/tcd:$version" ] || fail "deploy/daemonset.yaml runs '$images', not localhost/tcd:$version alone (scripts/image.sh's default tag)"
grep -qF 'command: ["tcd", "apply", "-f", "/etc/tcd/tcd.yaml"]' "$ds" || fail "the DaemonSet's init container is not tcd apply -f /etc/tcd/tcd.yaml"
grep -qF 'command: ["tcd", "stats", "--listen", ":9435"]' "$ds" || fail "the DaemonSet's metrics container is not tcd stats --listen :9435"
grep -qF '{name: bpffs, mountPath: /sys/fs/bpf, mountPropagation: Bidirectional}' "$ds" || fail "the DaemonSet mounts bpffs otherwise"
grep -qF '{name: locks, mountPath: /run/tcd}' "$ds" || fail "the DaemonSet mounts /run/tcd otherwise"
grep -qF 'path: /-/healthy' "$ds" && grep -qF 'path: /-/ready' "$ds" || fail "the DaemonSet probes other paths"
grep -qF 'capabilities: {drop: [ALL], add: [BPF, NET_ADMIN]}' "$ds" || fail "the DaemonSet's metrics container has other capabilities"
grep -qF '{name: bpffs, mountPath: /sys/fs/bpf, mountPropagation: HostToContainer, readOnly: true}' "$ds" || fail "the DaemonSet's metrics container mounts bpffs otherwise"
# The apply loop's script: the block under the apply-loop container's args.
loop_script=$(awk '
  /^ *- name: apply-loop$/ { in_c = 1; next }
  in_c && /^ *- \|$/ { match($0, /^ */); ind = RLENGTH + 2; grab = 1; next }
  grab { if ($0 ~ /^ *$/) { print ""; next }
         match($0, /^ */); if (RLENGTH < ind) exit
         print substr($0, ind + 1) }' "$ds")
grep -q 'tcd apply -f /etc/tcd/tcd.yaml' <<<"$loop_script" || fail "no apply loop script found in the DaemonSet: $loop_script"

# ---- the image -----------------------------------------------------------
out=$(BUILD_DIR=$build "$src/scripts/image.sh" --tag "$tag" 2>&1) || { echo "$out"; fail "scripts/image.sh failed"; }
echo "$out"
phase "image built (scripts/image.sh)"
label=$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$tag")
[ "$label" = "$version" ] || fail "the image's version label is '$label', tcd is $version"
got=$(podman run --rm --network none --ulimit host "$tag" --version) || fail "tcd --version in the image failed"
grep -q "^tcd $version " <<<"$got" || fail "the image runs '$got', not tcd $version"
module=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/tcd/tcd-http.so
podman run --rm --network none --ulimit host --entrypoint /bin/sh "$tag" -c \
  "test -e $module && test ! -e /usr/bin/busybox && test -z \"\$(ls /var/lib/apt/lists | grep -v -e ^lock -e ^partial)\"" \
  || fail "the image lacks $module, or carries busybox or apt lists"

# ---- a veth pair: one end on the host (as a node's eth0), one in a netns --
ip netns add "$ns"
ip link add "$host_if" type veth peer name "$ns_if" netns "$ns"
# The host end takes no address and forwards nothing: a frame that got past
# the dispatcher would die there, not be routed on.
sysctl -q -w "net.ipv6.conf.$host_if.disable_ipv6=1" "net.ipv4.conf.$host_if.forwarding=0"
ip link set "$host_if" up
nsenter --net=/run/netns/"$ns" sysctl -q -w "net.ipv6.conf.$ns_if.disable_ipv6=1"
ip -n "$ns" addr add 10.251.0.1/30 dev "$ns_if"
ip -n "$ns" link set "$ns_if" up
ip -n "$ns" neigh replace 10.251.0.2 lladdr "$(cat /sys/class/net/$host_if/address)" dev "$ns_if" nud permanent
send_udp() { "$PEER" udp-send --netns "$ns" --to 10.251.0.2 --port 9 --count "$1" --interval-us 200 >/dev/null; }

# The ConfigMap volume as the kubelet lays it out: tcd.yaml -> ..data/tcd.yaml,
# ..data -> a timestamped directory, swapped with one rename on an update.
cfg=$work/config
mkdir -p "$cfg" /run/tcd
configmap() {  # writes stdin as the new tcd.yaml
  local v; v=..$(date +%Y_%m_%d_%H_%M_%S.%N)
  mkdir "$cfg/$v"
  cat > "$cfg/$v/tcd.yaml"
  ln -sfn "$v" "$cfg/..data_tmp"
  mv -T "$cfg/..data_tmp" "$cfg/..data"
  ln -sfn ..data/tcd.yaml "$cfg/tcd.yaml"
}
# Everything is dropped in XDP: wired UDP, and every unwired key (the miss
# action).
configmap <<EOF
pin_dir: $pin
key: proto
hook: xdp
miss_action: drop
wiring:
  udp: drop
interfaces:
  - name: $host_if
EOF

# The DaemonSet's mounts, and TCD_PIN_DIR as its env sets it.
mounts=(--mount type=bind,src=/sys/fs/bpf,dst=/sys/fs/bpf,bind-propagation=rshared
        --mount type=bind,src="$cfg",dst=/etc/tcd,ro=true
        --mount type=bind,src=/run/tcd,dst=/run/tcd)
run=(podman run --privileged --network host --ulimit host -e TCD_PIN_DIR="$pin")
phase "veth pair and ConfigMap"

# ---- init container: apply ------------------------------------------------
out=$("${run[@]}" --rm "${mounts[@]}" "$tag" apply -f /etc/tcd/tcd.yaml 2>&1) || { echo "$out"; fail "the init apply failed"; }
echo "$out"
grep -q "attach $host_if" <<<"$out" && grep -q "map set 17 drop" <<<"$out" || fail "the init apply did not attach and wire"
"$TCD" -d "$pin" status | grep -q "attached: $host_if" || fail "the host does not see $pin attached to $host_if"
phase "init container: tcd apply"

# ---- metrics container ---------------------------------------------------
# Not privileged: CAP_BPF and CAP_NET_ADMIN alone, no seccomp filter, a
# read-only root, bpffs read-only and rslave (HostToContainer), as the
# DaemonSet's metrics container.
metrics=(podman run --network host --ulimit host --cap-drop all --cap-add BPF,NET_ADMIN
         --security-opt seccomp=unconfined --read-only -e TCD_PIN_DIR="$pin"
         --mount type=bind,src=/sys/fs/bpf,dst=/sys/fs/bpf,ro=true,bind-propagation=rslave)
"${metrics[@]}" -d --name "$c_metrics" "$tag" -j stats --listen 127.0.0.1:0 >/dev/null
listening() { podman logs "$c_metrics" 2>/dev/null | grep -q '"listen"'; }
until_ok 20 listening || { podman logs "$c_metrics"; fail "the metrics container never said where it listens"; }
port=$(podman logs "$c_metrics" 2>/dev/null | sed -n 's/.*"listen":"127.0.0.1:\([0-9]*\)".*/\1/p')
[ -n "$port" ] || fail "no port in: $(podman logs "$c_metrics" 2>&1)"
url=http://127.0.0.1:$port
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$url/-/ready")" = 200 ] || fail "/-/ready is not 200 with the instance loaded"
[ "$(code "$url/-/healthy")" = 200 ] || fail "/-/healthy is not 200"
[ "$(code "$url/")" = 200 ] || fail "/ is not 200"
[ "$(code "$url/nothing")" = 404 ] || fail "/nothing is not 404"
[ "$(code -X POST "$url/metrics")" = 405 ] || fail "POST /metrics is not 405"
[ "$(code -I "$url/metrics")" = 200 ] || fail "HEAD /metrics is not 200"
ctype=$(curl -s -o /dev/null -w '%{content_type}' "$url/metrics")
[ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "/metrics has Content-Type '$ctype'"
phase "metrics container up, paths answered"

send_udp 100
udp_line() { curl -sf "$url/metrics" | grep "^tcd_packets_total{pin_dir=\"$pin\",key=\"17\"" || true; }
udp_count() { udp_line | awk '{print $2}'; }
at_least() { local c; c=$(udp_count); [ -n "$c" ] && [ "$c" -ge "$1" ]; }
until_ok 10 at_least 100 || fail "100 UDP datagrams sent, /metrics says: $(udp_line)"
[ "$(udp_count)" = 100 ] || fail "100 UDP datagrams sent, /metrics counts $(udp_count)"
grep -q 'handler="drop"' <<<"$(udp_line)" || fail "the udp row does not name its handler: $(udp_line)"
# Concurrent scrapes: 16 at once, every one whole and the same.
for i in $(seq 16); do curl -sf -o "$work/scrape.$i" "$url/metrics" & done
wait
for i in $(seq 16); do
  grep -q "^tcd_packets_total{pin_dir=\"$pin\",key=\"17\".* 100$" "$work/scrape.$i" || fail "concurrent scrape $i: $(head -c 300 "$work/scrape.$i")"
  grep -q '^tcd_total_bytes_total' "$work/scrape.$i" || fail "concurrent scrape $i was cut short"
done
# A second server on the port in use is refused, clearly.
set +e
err=$("${metrics[@]}" --rm "$tag" stats --listen "127.0.0.1:$port" 2>&1 >/dev/null)
rc=$?
set -e
[ $rc = 1 ] || fail "a second server on port $port exited $rc: $err"
[ "$err" = "tcd: listen 127.0.0.1:$port: the address is in use (another process listens on port $port: stop it, or choose another port)" ] \
  || fail "a second server on port $port said: $err"
phase "traffic counted and scraped, 16 concurrent scrapes"

# ---- stopping the metrics container leaves the datapath ------------------
podman stop -t 10 "$c_metrics" >/dev/null
rc=$(podman inspect --format '{{.State.ExitCode}}' "$c_metrics")
[ "$rc" = 0 ] || fail "tcd stats --listen exited $rc on SIGTERM"
"$TCD" -d "$pin" status | grep -q "attached: $host_if" || fail "the dispatcher left $host_if with the container"
send_udp 50
host_udp() { "$TCD" -d "$pin" -j stats | grep -o '"key":17,[^}]*"packets":[0-9]*' | sed 's/.*"packets"://'; }
host_at_least() { local c; c=$(host_udp); [ -n "$c" ] && [ "$c" -ge "$1" ]; }
until_ok 10 host_at_least 150 || fail "after the container stopped, 50 more datagrams: the host counts $(host_udp) of 150"
[ "$(host_udp)" = 150 ] || fail "the host counts $(host_udp) UDP packets, not 150"
phase "metrics container stopped (exit 0), datapath still counting"

# ---- a second apply container: nothing to do ------------------------------
out=$("${run[@]}" --rm "${mounts[@]}" "$tag" apply -f /etc/tcd/tcd.yaml 2>&1) || { echo "$out"; fail "the second apply failed"; }
[ "$out" = "$pin: as /etc/tcd/tcd.yaml says, nothing to do" ] || fail "the second apply said: $out"
phase "second apply container: nothing to do"

# ---- the DaemonSet's apply loop: a changed ConfigMap is applied -----------
"${run[@]}" -d --name "$c_loop" -e TCD_APPLY_EVERY=1 "${mounts[@]}" --entrypoint /bin/sh "$tag" -c "$loop_script" >/dev/null
ready() { podman exec "$c_loop" test -e /tmp/applied; }
until_ok 20 ready || { podman logs "$c_loop"; fail "the apply loop never became ready"; }
configmap <<EOF
pin_dir: $pin
key: proto
hook: xdp
miss_action: drop
wiring:
  udp: drop
  icmp: drop
interfaces:
  - name: $host_if
EOF
icmp_wired() { "$TCD" -d "$pin" map list | grep -q '^ *1 .*drop'; }
until_ok 20 icmp_wired || { podman logs "$c_loop"; fail "the apply loop did not wire icmp from the changed ConfigMap"; }
podman logs "$c_loop" 2>&1 | grep -q "map set 1 drop" || fail "the apply loop's log does not show its change: $(podman logs "$c_loop" 2>&1)"
phase "apply loop: changed ConfigMap applied"
# A broken ConfigMap: readiness goes, the datapath stays as it was.
printf 'pin_dir: %s\nwiring:\n  udp: drop\nbogus: 1\n' "$pin" | configmap
not_ready() { ! ready; }
until_ok 20 not_ready || fail "the apply loop stayed ready with a broken ConfigMap"
icmp_wired && "$TCD" -d "$pin" status | grep -q "attached: $host_if" || fail "a broken ConfigMap changed the datapath"
podman logs "$c_loop" 2>&1 | grep -q "^tcd: .*bogus" || fail "the apply loop's log does not say what is wrong: $(podman logs "$c_loop" 2>&1 | tail -3)"
podman stop -t 10 "$c_loop" >/dev/null
rc=$(podman inspect --format '{{.State.ExitCode}}' "$c_loop")
[ "$rc" = 0 ] || fail "the apply loop exited $rc on SIGTERM"
phase "apply loop: broken ConfigMap not ready, SIGTERM exit 0"

[ "$(sysctl -n net.ipv4.ip_forward)" = "$forwarding" ] || fail "net.ipv4.ip_forward changed during the test"
printf '%-58s %6.1f s\n' "total" "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{print a-b}')"
echo "image test passed"
