#!/usr/bin/env bash
# Builds the .deb with cpack, installs it with dpkg into a scratch root (its
# own admin dir; the runtime libraries are the host's, so --force-depends),
# and checks that everything is where Debian expects it, that dpkg records it
# as installed, and that it depends on the packages of the libraries the
# binary and its HTTP module (stats --listen) load (ELF NEEDED, mapped with
# dpkg -S: what dpkg-shlibdeps computes) plus libpcap0.8, which tcd trace
# opens at run time.
set -euo pipefail
build=$1
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$build"
cpack -G DEB -B "$scratch/out" >/dev/null
deb=$(ls "$scratch"/out/tcd_*.deb)
root=$scratch/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
if ! dpkg --root="$root" --log=/dev/null --force-depends --force-not-root -i "$deb" >"$scratch/dpkg.log" 2>&1; then
  echo "dpkg -i into the scratch root failed:"; cat "$scratch/dpkg.log"; exit 1
fi
fail=0
state=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' tcd 2>&1 || true)
[ "$state" = "install ok installed" ] || { echo "dpkg does not record tcd as installed: $state"; fail=1; }
listed=$(dpkg-query --admindir="$root/var/lib/dpkg" -L tcd)
for f in usr/sbin/tcd usr/lib/$multiarch/tcd/tcd-http.so usr/share/man/man8/tcd.8 usr/share/bash-completion/completions/tcd \
         usr/share/zsh/vendor-completions/_tcd usr/share/fish/vendor_completions.d/tcd.fish \
         usr/include/tcd/handler.h usr/include/tcd/shared.h \
         usr/share/doc/tcd/examples/ports.bpf.c usr/share/doc/tcd/examples/ports.bpf.o \
         usr/share/doc/tcd/examples/chain.bpf.o usr/share/doc/tcd/examples/tc_chain.bpf.o \
         usr/share/doc/tcd/examples/tree.yaml \
         usr/lib/systemd/system/tcd-apply.service usr/share/doc/tcd/deploy/tcd.yaml \
         usr/share/doc/tcd/deploy/daemonset.yaml; do
  if [ ! -e "$root/$f" ]; then echo "missing in the scratch root: /$f"; fail=1; fi
  if ! grep -qx "/$f" <<<"$listed"; then echo "dpkg -L tcd does not list /$f"; fail=1; fi
done
# deploy/tcd.yaml's handler object is one the package installs.
obj=$(sed -n 's/^ *- object: *//p' "$root/usr/share/doc/tcd/deploy/tcd.yaml")
[ -e "$root$obj" ] || { echo "deploy/tcd.yaml loads $obj, which the package does not install"; fail=1; }
file "$root/usr/share/doc/tcd/examples/ports.bpf.o" | grep -q 'eBPF' || { echo "ports.bpf.o is not a BPF ELF"; fail=1; }

depends=$(dpkg-deb -f "$deb" Depends)
names=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//')
want="libpcap0.8"
for lib in $(objdump -p "$root/usr/sbin/tcd" "$root/usr/lib/$multiarch/tcd/tcd-http.so" | awk '/NEEDED/ { print $2 }' | sort -u); do
  pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -1 | cut -d: -f1)
  [ -n "$pkg" ] || { echo "no package holds $lib, which tcd needs"; fail=1; continue; }
  want="$want $pkg"
done
for d in $want libbpf1 libxdp1 libc6; do
  grep -qx "$d" <<<"$names" || { echo "Depends lacks $d: $depends"; fail=1; }
done
# yaml-cpp and fmt are linked into the binary: the package must not need them,
# or must depend on them if it does.
for l in libyaml-cpp libfmt; do
  needs=$(objdump -p "$root/usr/sbin/tcd" | awk '/NEEDED/ { print $2 }' | grep -c "^$l" || true)
  has=$(grep -c "^$l" <<<"$names" || true)
  if [ "$needs" != 0 ] && [ "$has" = 0 ]; then echo "tcd needs $l but Depends lacks it: $depends"; fail=1; fi
done
"$root/usr/sbin/tcd" --version | grep -q '^tcd ' || { echo "packaged tcd does not run"; fail=1; }
# Only the module loads the HTTP library (tcd's start-up does not), and the
# installed binary finds it where the package puts it: serving until SIGTERM
# (as root: stats needs the privileges).
objdump -p "$root/usr/sbin/tcd" | grep -q 'NEEDED.*httplib' && { echo "tcd itself links the HTTP library"; fail=1; }
if [ "$(id -u)" = 0 ]; then
  rc=0
  served=$(timeout --preserve-status -s TERM 2 "$root/usr/sbin/tcd" -d "$scratch/none" stats --listen 127.0.0.1:0 2>&1) || rc=$?
  [ $rc = 0 ] && grep -q '^serving ' <<<"$served" || { echo "packaged tcd stats --listen: exit $rc: $served"; fail=1; }
fi
[ $fail = 0 ] && echo "package ok: $(basename "$deb") installed with dpkg into a scratch root; Depends: $depends"
exit $fail
