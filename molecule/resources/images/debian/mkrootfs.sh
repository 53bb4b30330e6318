#!/usr/bin/env bash
# Write a minimal Debian 12 (bookworm) root file system to DIR with debootstrap,
# trimmed for use as a container image (build_images.sh imports it).
# Usage: mkrootfs.sh DIR [MIRROR]     (root; DIR must not exist)
set -euo pipefail

root=${1:?usage: mkrootfs.sh DIR [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
# What every image of the test fleet needs: TLS roots for the Debian and PyPI
# mirrors, and a Python for Ansible (and for the stand-ins).
include=ca-certificates,python3

[ "$(id -u)" = 0 ] || { echo "mkrootfs.sh: debootstrap needs root" >&2; exit 1; }
[ ! -e "$root" ] || { echo "mkrootfs.sh: $root exists; remove it first" >&2; exit 1; }

debootstrap --variant=minbase --include="$include" --components=main bookworm "$root" "$mirror"

# Later apt-get runs inside images see the release, its updates and security.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# No documentation, manuals or translations now or in later installs: these are
# test images, and size is start-up time for every molecule run.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-tritonfleet-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/usr/share/lintian/*

# Keep apt's caches out of every image layer built on top of this one.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"

chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
  "$root"/var/lib/dpkg/*-old "$root"/tmp/* "$root"/var/tmp/*
find "$root/var/log" -type f -exec truncate -s 0 {} +
# Docker provides these per container.
: >"$root/etc/hostname"
rm -f "$root/etc/resolv.conf"
