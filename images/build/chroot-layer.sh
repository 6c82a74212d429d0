#!/bin/sh
# One overlay layer: mount the parent's layers (read-only lowers) with a new upper, chroot into
# the merged tree, install Debian packages and/or run commands, and unmount. What the chroot
# changed is left in UPPER: the new layer, whiteouts and opaque dirs included (overlay semantics,
# so the upper is used as-is as a lowerdir later).
# Run inside a private mount+PID namespace (the builder does): whatever happens, every mount
# made here and every process started in the chroot ends with the namespace.
# Usage: chroot-layer.sh LOWERDIRS UPPER WORK MERGED SPEC_DIR APT_CACHE
#   LOWERDIRS  overlay lowerdir= value (top layer first)
#   SPEC_DIR   packages (one per line), commands.sh, sources.list, apt.conf
set -eu
lower=$1 upper=$2 work=$3 merged=$4 spec=$5 cache=$6

mounted=""
cleanup() {
  for m in $mounted; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
track() { mounted="$1 $mounted"; }

echo "==> overlay: lowerdir=$lower"
mount -t overlay cellblock-build -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
track "$merged"
for d in proc sys dev tmp; do
  [ -d "$merged/$d" ] || { echo "parent image lacks /$d (not finalized?)" >&2; exit 2; }
done
mount -t proc proc "$merged/proc"; track "$merged/proc"
mount -t sysfs -o ro sysfs "$merged/sys"; track "$merged/sys"
mount --bind /dev "$merged/dev"; track "$merged/dev"
# apt and postinst scripts write scratch files to /tmp: keep them out of the layer.
mount -t tmpfs -o mode=1777 tmpfs "$merged/tmp"; track "$merged/tmp"

in_chroot() {
  chroot "$merged" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"
}

packages=$(grep -v '^[[:space:]]*$' "$spec/packages" || true)
if [ -n "$packages" ]; then
  [ -x "$merged/usr/bin/apt-get" ] || { echo "parent image has no apt-get: packages need a Debian parent" >&2; exit 2; }
  [ -f "$merged/etc/resolv.conf" ] || { echo "parent image lacks /etc/resolv.conf (not finalized?)" >&2; exit 2; }
  mount --bind /etc/resolv.conf "$merged/etc/resolv.conf"; track "$merged/etc/resolv.conf"
  mkdir -p "$cache/partial"
  mount --bind "$cache" "$merged/var/cache/apt/archives"; track "$merged/var/cache/apt/archives"
  cp "$spec/sources.list" "$merged/etc/apt/sources.list.d/zz-cellblock-build.list"
  cp "$spec/apt.conf" "$merged/etc/apt/apt.conf.d/zz-cellblock-build"
  # No service may start inside the build (policy-rc.d, invoke-rc.d's convention).
  printf '#!/bin/sh\nexit 101\n' >"$merged/usr/sbin/policy-rc.d"
  chmod 0755 "$merged/usr/sbin/policy-rc.d"

  echo "==> apt-get update"
  in_chroot apt-get update -q
  echo "==> apt-get install --no-install-recommends $(echo $packages)"
  # shellcheck disable=SC2086
  in_chroot apt-get install -y -q --no-install-recommends $packages

  rm -f "$merged/usr/sbin/policy-rc.d" "$merged/etc/apt/sources.list.d/zz-cellblock-build.list" \
    "$merged/etc/apt/apt.conf.d/zz-cellblock-build"
fi

if [ -s "$spec/commands.sh" ]; then
  echo "==> commands"
  cp "$spec/commands.sh" "$merged/tmp/cellblock-commands.sh"
  in_chroot /bin/sh -eu /tmp/cellblock-commands.sh
fi

echo "==> clean: apt lists and caches, logs"
# Removed through the merged view, so that files of lower layers get proper whiteouts.
rm -rf "$merged"/var/lib/apt/lists/* "$merged"/var/cache/apt/*.bin "$merged"/var/cache/debconf/*-old \
  "$merged"/var/lib/dpkg/*-old "$merged"/var/log/dpkg.log "$merged"/var/log/alternatives.log "$merged"/var/log/apt/*

# Newest mount first; a failure here fails the build (the namespace still drops the rest).
for m in $mounted; do umount "$m"; done
mounted=""
echo "==> layer done"
