#!/usr/bin/env bash
# Builds the .deb with cpack, unpacks it into a scratch root and checks that
# everything is where Debian expects it and that it depends on the runtime
# libraries tcd needs.
set -euo pipefail
build=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$build"
cpack -G DEB -B "$scratch/out" >/dev/null
deb=$(ls "$scratch"/out/tcd_*.deb)
dpkg-deb -x "$deb" "$scratch/root"
fail=0
for f in usr/sbin/tcd usr/share/man/man8/tcd.8 usr/share/bash-completion/completions/tcd \
         usr/share/zsh/vendor-completions/_tcd usr/share/fish/vendor_completions.d/tcd.fish \
         usr/include/tcd/handler.h usr/include/tcd/shared.h usr/share/doc/tcd/examples/ports.bpf.c \
         usr/lib/systemd/system/tcd-apply.service usr/share/doc/tcd/deploy/tcd.yaml; do
  if [ ! -e "$scratch/root/$f" ]; then echo "missing in the package: /$f"; fail=1; fi
done
depends=$(dpkg-deb -f "$deb" Depends)
for d in libbpf1 libxdp1 libpcap0.8 libc6; do
  if ! grep -q "$d" <<<"$depends"; then echo "Depends lacks $d: $depends"; fail=1; fi
done
"$scratch/root/usr/sbin/tcd" --version | grep -q '^tcd ' || { echo "packaged tcd does not run"; fail=1; }
[ $fail = 0 ] && echo "package ok: $(basename "$deb"); Depends: $depends"
exit $fail
