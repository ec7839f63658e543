#!/usr/bin/env bash
# Builds tcd's container image with podman from deploy/Containerfile and the
# .deb of a build tree, then prints the image's name, id and size.
#   scripts/image.sh [--tag NAME] [--base IMAGE] [--new-base] [--deb FILE]
#   --tag NAME     the image's name (default localhost/tcd:VERSION, the name
#                  deploy/daemonset.yaml runs)
#   --base IMAGE   build on IMAGE, e.g. debian:bookworm-slim where a registry
#                  is reachable (default localhost/tcd-base:bookworm, below)
#   --new-base     make localhost/tcd-base:bookworm again even if it exists
#   --deb FILE     this .deb, not one packed from BUILD_DIR
# The default base needs no registry: a Debian 12 minbase root that
# mmdebstrap makes from the Debian archive apt already uses (`apt-get
# indextargets` names it), with dpkg set up as in debian:bookworm-slim,
# imported as localhost/tcd-base:bookworm (kept for the next build). The
# .deb is packed with cpack from BUILD_DIR (default build), built first if
# it is not (cpack needs every target built). Rootful podman; run as root. CONTAINERS_CONF, if set, is used;
# otherwise a containers.conf of the script's own: the runc runtime (crun
# refuses hosts with a hybrid cgroup layout) and no raised rlimits (which
# need CAP_SYS_RESOURCE). The machine's own podman configuration is left
# alone.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BASE_IMAGE=localhost/tcd-base:bookworm
tag= base= new_base=0 deb=
usage() { echo "usage: scripts/image.sh [--tag NAME] [--base IMAGE] [--new-base] [--deb FILE]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --tag) [ $# -ge 2 ] || usage; tag=$2; shift 2 ;;
    --base) [ $# -ge 2 ] || usage; base=$2; shift 2 ;;
    --new-base) new_base=1; shift ;;
    --deb) [ $# -ge 2 ] || usage; deb=$(realpath "$2"); shift 2 ;;
    *) usage ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "image: needs root (rootful podman, mmdebstrap --mode=root)" >&2; exit 1; }
for tool in podman mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "image: $tool is missing (apt-get install $tool; scripts/packages.txt lists it)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${CONTAINERS_CONF:-}" ]; then
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$work/containers.conf"
  export CONTAINERS_CONF=$work/containers.conf
fi
step() { printf 'image: %s\n' "$*" >&2; }

# The .deb.
mkdir -p "$work/context"
if [ -z "$deb" ]; then
  [ -f "$BUILD_DIR/CMakeCache.txt" ] || cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  # cpack builds every target first (as `make install` does): all of them, then.
  step "building tcd in $BUILD_DIR/"
  cmake --build "$BUILD_DIR" -j2 >/dev/null
  step "packing the .deb (cpack)"
  (cd "$BUILD_DIR" && cpack -G DEB -B "$work/deb" > "$work/cpack.log" 2>&1) \
    || { cat "$work/cpack.log" >&2; echo "image: cpack failed" >&2; exit 1; }
  deb=$(ls "$work"/deb/tcd_*.deb)
fi
cp "$deb" "$work/context/tcd.deb"
version=$(dpkg-deb -f "$deb" Version)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
tag=${tag:-localhost/tcd:$version}

# The base.
if [ -z "$base" ]; then
  base=$BASE_IMAGE
  if [ "$new_base" = 1 ] || ! podman image exists "$base"; then
    # Debian's own archive lines (bookworm, -updates, -security) as apt has them.
    mapfile -t sources < <(apt-get indextargets --format 'deb $(REPO_URI) $(RELEASE) $(COMPONENT)' \
                             'Created-By: Packages' 'Origin: Debian' | sort -u)
    [ ${#sources[@]} -gt 0 ] || { echo "image: apt names no Debian archive (run apt-get update first)" >&2; exit 1; }
    step "making $base with mmdebstrap from: ${sources[*]}"
    # merged-usr hook: /usr merged without the usrmerge package (and perl).
    # The dpkg options stay in the root, as in debian:bookworm-slim.
    mmdebstrap --variant=minbase --mode=root --format=tar \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --aptopt='APT::Install-Recommends "false"' \
      --dpkgopt=force-unsafe-io \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      bookworm "$work/base.tar" "${sources[@]}" > "$work/mmdebstrap.log" 2>&1 \
      || { cat "$work/mmdebstrap.log" >&2; echo "image: mmdebstrap failed" >&2; exit 1; }
    podman import --quiet --change 'CMD ["/bin/bash"]' "$work/base.tar" "$base" >/dev/null
    rm -f "$work/base.tar"
  fi
fi

step "building $tag on $base"
# Host network for apt inside the build: no bridge or firewall rules made.
# No intermediate images kept: the one layer is the build's result.
podman build --quiet --network host --layers=false --from "$base" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg BASE="$base" \
  -t "$tag" -f deploy/Containerfile "$work/context" > "$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; echo "image: podman build failed" >&2; exit 1; }
id=$(podman image inspect --format '{{.Id}}' "$tag")
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "image: $tag"
echo "id:    ${id:0:12}"
echo "size:  $((size / 1000000)) MB ($size bytes)"
