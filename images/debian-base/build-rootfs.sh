#!/usr/bin/env bash
# Build the root filesystem of ecommerce-test/debian-base: Debian bookworm, minbase variant.
#   build-rootfs.sh TARGET_DIR MIRROR_URI
# MIRROR_URI comes from the machine's own apt configuration (images/build.py reads it); it is
# never written into the repository. Needs root (debootstrap, chroot).
set -euo pipefail

SUITE=bookworm
VARIANT=minbase

[ $# -eq 2 ] || { echo "usage: $0 TARGET_DIR MIRROR_URI" >&2; exit 2; }
target="$1"
mirror="$2"
[ "$(id -u)" = 0 ] || { echo "build-rootfs: error: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-rootfs: error: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }

debootstrap --variant="$VARIANT" "$SUITE" "$target" "$mirror"

# What the official debian image sets up for containers:
# - no service may start during package installation (there is no init in a container);
cat >"$target/usr/sbin/policy-rc.d" <<'POLICY'
#!/bin/sh
# No init system in a container: refuse every service start during package installation.
exit 101
POLICY
chmod 0755 "$target/usr/sbin/policy-rc.d"
# - apt keeps no package cache and installs no recommended packages nor docs it does not need;
cat >"$target/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
cat >"$target/etc/apt/apt.conf.d/docker-no-recommends" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT
cat >"$target/etc/dpkg/dpkg.cfg.d/docker-no-docs" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
DPKG
# - no host-specific or cached state in the image.
rm -rf "$target"/var/lib/apt/lists/* "$target"/var/cache/apt/*.bin "$target"/var/cache/apt/archives/*.deb \
  "$target"/var/log/*.log "$target"/var/log/apt/* "$target"/tmp/* "$target"/root/.bash_history
: >"$target/etc/hostname"
: >"$target/etc/resolv.conf"
