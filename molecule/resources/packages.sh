#!/usr/bin/env bash
# Build a flat apt repository for the gpu_host role's air-gapped install path
# (gpu_host_package_source: directory): the .deb files of docker.io,
# python3-requests, haproxy (the gateway), prometheus and prometheus-node-exporter (monitoring) and of every dependency the fleet-host image lacks
# (Recommends included, so installs with or without recommends both work),
# the stand-in nvidia-container-toolkit package built here from
# standin/nvidia-container-toolkit/ (dpkg-deb), plus Packages and Release
# indexes. Use it as
#   deb [trusted=yes] file:DIR ./
#
# Usage: packages.sh DIR
# Environment:
#   TRITONFLEET_PACKAGES  packages to make installable (default "docker.io python3-requests haproxy prometheus
#                         prometheus-node-exporter")
#
# The download runs in a throwaway fleet-host container (the image must exist:
# build_images.sh fleet-host), so the set matches that image exactly. A DIR
# made for the same packages, the same fleet-host image and the same stand-in
# toolkit files is left alone.
# Needs dpkg-deb and dpkg-scanpackages (Debian package dpkg-dev) on this host.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case ${1:-} in
  ''|-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; [ -n "${1:-}" ]; exit ;;
esac
dir=$(realpath -m "$1")
read -r -a packages <<<"${TRITONFLEET_PACKAGES:-docker.io python3-requests haproxy prometheus prometheus-node-exporter}"

ensure_docker
need_cmd dpkg-scanpackages "apt-get install dpkg-dev"
image_inputs=$(image_label "$IMAGE_FLEET_HOST")
[ -n "$image_inputs" ] || die "$IMAGE_FLEET_HOST is missing; run build_images.sh fleet-host"
# The stand-in NVIDIA Container Toolkit (see its DEBIAN/control).
STANDIN_TOOLKIT=$RESOURCES_DIR/standin/nvidia-container-toolkit
standin_inputs=$(inputs_hash "dir:$STANDIN_TOOLKIT")
stamp="packages=${packages[*]} fleet-host=$image_inputs nvidia-container-toolkit=$standin_inputs"

if [ -f "$dir/Packages" ] && [ "$(cat "$dir/.tritonfleet-packages" 2>/dev/null)" = "$stamp" ]; then
  log "$dir is up to date ($(find "$dir" -maxdepth 1 -name '*.deb' | wc -l) packages for: ${packages[*]})"
  exit 0
fi

if [ -e "$dir" ] && [ ! -f "$dir/.tritonfleet-packages" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  die "$dir exists, is not empty and was not made by packages.sh; it would be replaced: choose another directory"
fi

started=$(date +%s)
parent=$(dirname "$dir")
mkdir -p "$parent"
staging=$(mktemp -d "$parent/.$(basename "$dir").new-XXXXXX")
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/partial"
chmod 755 "$staging"

log "resolving and downloading ${packages[*]} in a throwaway $IMAGE_FLEET_HOST container"
# The container runs as root: apt's _apt sandbox user could not write to the bind mount.
docker run --rm --entrypoint /bin/bash -e DEBIAN_FRONTEND=noninteractive \
  --label org.tritonfleet.resource=packages \
  -v "$staging:/out" "$IMAGE_FLEET_HOST" -c '
    set -euo pipefail
    apt-get update -qq
    apt-get install -y -qq --download-only -o APT::Sandbox::User=root -o Dir::Cache::archives=/out/ "$@" |
      grep -E "^(Need to get|[0-9]+ upgraded)" || true
    rm -rf /out/partial /out/lock
    chown -R '"$(id -u):$(id -g)"' /out
  ' fleet-host-download "${packages[@]}" ||
  die "downloading ${packages[*]} failed (can the container reach the Debian mirror?)"

count=$(find "$staging" -maxdepth 1 -name '*.deb' | wc -l)
[ "$count" -gt 0 ] || die "no packages were downloaded; are ${packages[*]} installed in $IMAGE_FLEET_HOST already?"
for p in "${packages[@]}"; do
  ls "$staging/${p}_"*.deb >/dev/null 2>&1 || die "$p was not downloaded"
done

# build_standin_toolkit DIR: the stand-in toolkit's .deb into DIR. Its Python
# commands say `#!/usr/bin/env python` in the checkout (ansible-test's rule);
# Debian has only python3, so the package gets /usr/bin/python3, as Debian's
# own packaging rewrites interpreter lines.
build_standin_toolkit() {
  local out=$1 tree f version
  need_cmd dpkg-deb "apt-get install dpkg"
  tree=$(mktemp -d)
  cp -a "$STANDIN_TOOLKIT/." "$tree/"
  for f in "$tree"/usr/bin/*; do
    if [ "$(head -n1 "$f")" = '#!/usr/bin/env python' ]; then sed -i '1s|.*|#!/usr/bin/python3|' "$f"; fi
  done
  chmod 755 "$tree" "$tree/DEBIAN" "$tree"/usr "$tree"/usr/bin "$tree"/usr/bin/*
  chmod 644 "$tree/DEBIAN/control"
  version=$(sed -n 's/^Version: //p' "$tree/DEBIAN/control")
  dpkg-deb --root-owner-group --build "$tree" "$out/nvidia-container-toolkit_${version}_all.deb" >/dev/null ||
    { rm -rf "$tree"; die "dpkg-deb could not build the stand-in nvidia-container-toolkit"; }
  rm -rf "$tree"
  log "built the stand-in nvidia-container-toolkit $version"
}
build_standin_toolkit "$staging"
count=$((count + 1))

log "indexing $count packages"
# An unsigned Release file: apt then has checksums for the indexes and says
# nothing about a missing Release ([trusted=yes] accepts it unsigned).
index_flat_repo "$staging" "tritonfleet molecule packages" "Suite: tritonfleet" "Codename: tritonfleet"
grep -c '^Package:' "$staging/Packages" >/dev/null || die "the Packages index is empty"
echo "$stamp" >"$staging/.tritonfleet-packages"

rm -rf "$dir"
mv "$staging" "$dir"
trap - EXIT
log "wrote $dir: $count packages, $(du -sh "$dir" | cut -f1), in $(($(date +%s) - started)) s"
log "apt source: deb [trusted=yes] file:$dir ./"
