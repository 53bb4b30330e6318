#!/usr/bin/env bash
# Signed apt repositories over HTTP for the gpu_host role's `apt` path
# (gpu_host_package_source: apt), made from packages.sh's flat directory and
# signed with a throwaway GPG key (a new one on every `start`):
#   /debian/                                   a site's internal Debian mirror: every .deb but the toolkit
#   /libnvidia-container/stable/deb/amd64/     NVIDIA's repository: the stand-in nvidia-container-toolkit
#   /libnvidia-container/gpgkey                the public key, ASCII-armoured (as NVIDIA serves its own)
#   /debian/archive-key.gpg                    the same key, binary (for a `signed-by` in /usr/share/keyrings)
# Each repository is flat (Packages, Packages.gz, Release, InRelease, Release.gpg):
#   deb [signed-by=KEY] http://ADDRESS/debian ./
#   deb [signed-by=KEY] http://ADDRESS/libnvidia-container/stable/deb/$(ARCH) /
#
# Usage: aptrepo.sh start PACKAGES_DIR NETWORK ADDRESS   build the tree (.cache/aptrepo), serve it in container
#                                                       tritonfleet-aptrepo (python3 -m http.server, port 80) at
#                                                       ADDRESS on NETWORK, wait until it answers
#        aptrepo.sh stop                                remove the container
# Needs gpg (Debian package gnupg) and dpkg-scanpackages (dpkg-dev) on this host. The key's secret
# half lives in a temporary GNUPGHOME and is deleted after signing; only the public key is served.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=tritonfleet-aptrepo
TREE=$CACHE_DIR/aptrepo
TOOLKIT="nvidia-container-toolkit"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# index_and_sign REPO_DIR: Packages, Packages.gz, Release, InRelease and Release.gpg of a flat repository.
index_and_sign() {
  local repo=$1
  index_flat_repo "$repo" "tritonfleet molecule $(basename "$repo")"
  (
    cd "$repo"
    gpg --batch --yes --quiet --local-user "$fingerprint" --clearsign -o InRelease Release
    gpg --batch --yes --quiet --local-user "$fingerprint" --armor --detach-sign -o Release.gpg Release
  )
  grep -q '^Package:' "$repo/Packages" || die "the index of $repo is empty"
}

build_tree() {
  local packages=$1 nvidia f
  [ -f "$packages/Packages" ] || die "$packages is not a package directory; run packages.sh $packages"
  need_cmd gpg "apt-get install gnupg"
  need_cmd dpkg-scanpackages "apt-get install dpkg-dev"
  mkdir -p "$CACHE_DIR"
  staging=$(mktemp -d "$CACHE_DIR/.aptrepo.new-XXXXXX")
  GNUPGHOME=$(mktemp -d /tmp/tritonfleet-gnupg-XXXXXX)
  export GNUPGHOME
  trap 'gpgconf --kill gpg-agent 2>/dev/null || true; rm -rf "$GNUPGHOME" "${staging:-}"' EXIT
  gpg --batch --quiet --passphrase '' --quick-gen-key "tritonfleet molecule repository (throwaway) <repo@tritonfleet.invalid>" \
    ed25519 sign 1d 2>/dev/null || die "gpg could not generate a key"
  fingerprint=$(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }')

  nvidia=$staging/libnvidia-container/stable/deb/$(dpkg --print-architecture)
  mkdir -p "$staging/debian" "$nvidia"
  for f in "$packages"/*.deb; do
    case $(basename "$f") in
      "${TOOLKIT}"_*) cp -l "$f" "$nvidia/" 2>/dev/null || cp "$f" "$nvidia/" ;;
      *) cp -l "$f" "$staging/debian/" 2>/dev/null || cp "$f" "$staging/debian/" ;;
    esac
  done
  ls "$nvidia/${TOOLKIT}"_*.deb >/dev/null 2>&1 || die "$packages holds no $TOOLKIT package"
  index_and_sign "$staging/debian"
  index_and_sign "$nvidia"
  gpg --batch --armor --export "$fingerprint" >"$staging/libnvidia-container/gpgkey"
  gpg --batch --export "$fingerprint" >"$staging/debian/archive-key.gpg"
  chmod -R a+rX "$staging"
  rm -rf "$TREE"
  mv "$staging" "$TREE"
  staging=
  log "signed $TREE/debian and $TREE/libnvidia-container with throwaway key $fingerprint"
}

case ${1:-} in
  start)
    [ $# -eq 4 ] || { usage; exit 2; }
    ensure_docker
    build_tree "$(realpath "$2")"
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker run -d --name "$NAME" --label org.tritonfleet.resource=aptrepo --network "$3" --ip "$4" \
      -v "$TREE:/srv/www:ro" --entrypoint python3 "$IMAGE_DEBIAN" -m http.server 80 --directory /srv/www >/dev/null ||
      die "could not start $NAME"
    for _ in $(seq 1 40); do
      if docker exec "$NAME" python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1/debian/InRelease', timeout=2)" \
        >/dev/null 2>&1; then
        log "serving http://$4/debian and http://$4/libnvidia-container on $3"
        exit 0
      fi
      sleep 0.25
    done
    die "$NAME does not answer; docker logs $NAME"
    ;;
  stop) docker rm -f "$NAME" >/dev/null 2>&1 || true; log "removed $NAME" ;;
  -h|--help) usage ;;
  *) usage; exit 2 ;;
esac
