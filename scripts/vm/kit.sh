#!/usr/bin/env bash
# Prepares what boots the throwaway cgroup v2 VM of scripts/vm/run.sh: Debian's qemu-system-x86,
# installed when missing, and a kit of a Debian kernel, fetched from the machine's own apt
# sources with `apt-get download` and unpacked (never installed: the host's /boot is untouched),
# with an initramfs of static busybox, scripts/vm/init, and the kernel modules the VM needs to
# mount the host's root (virtio, 9p) and to run overlayfs.
# Prints the kit's directory. Idempotent: a kit built for the current kernel package and init
# script is reused; kits of earlier ones are removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
data_dir=${CELLBLOCK_DATA_DIR:-/var/lib/cellblock}

arch=$(dpkg --print-architecture)
if [ "$arch" != amd64 ]; then
  echo "vm kit: only amd64 kernels are set up (this machine is $arch)" >&2
  exit 2
fi
if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "vm kit: installing Debian's qemu-system-x86" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; }
fi
# The metapackage names the current kernel package (linux-image-6.1.0-NN-amd64).
kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$kernel_pkg" ]; then
  apt-get update -qq
  kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
[ -n "$kernel_pkg" ] || { echo "vm kit: apt knows no linux-image-amd64 kernel package" >&2; exit 1; }
# Named by the two files' contents alone (not their paths, which sha256sum would print with
# them): every checkout of the same scripts, a CI clone's or a worktree's, shares one kit.
init_hash=$(cat "$repo/scripts/vm/init" "$0" | sha256sum | cut -c1-12)
kit="$data_dir/vm/$kernel_pkg-$init_hash"
if [ -f "$kit/ready" ]; then echo "$kit"; exit 0; fi

# One build at a time (a second caller waits, then finds the kit ready).
mkdir -p "$data_dir/vm"
exec 9>"$data_dir/vm/.lock"
flock 9
if [ -f "$kit/ready" ]; then echo "$kit"; exit 0; fi
work=$(mktemp -d "$data_dir/vm/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq "$kernel_pkg" 2>/dev/null) || { apt-get update -qq; (cd "$work" && apt-get download -qq "$kernel_pkg"); }
dpkg-deb -x "$work"/"$kernel_pkg"_*.deb "$work/pkg"
release=${kernel_pkg#linux-image-}
modules="$work/pkg/lib/modules/$release/kernel"

# The initramfs: busybox, /init, and the modules the VM needs, each after those it depends on
# (read from the module's own depends= field, as modprobe would from modules.dep).
root="$work/initramfs"
mkdir -p "$root/bin" "$root/modules" "$root/proc" "$root/sys" "$root/dev" "$root/host" "$root/rw" "$root/newroot"
cp /bin/busybox "$root/bin/busybox"
add_module() {
  local name=$1 file dep
  grep -qx "$name" "$root/modules/order" 2>/dev/null && return 0
  file=$(find "$modules" \( -name "$name.ko" -o -name "$name.ko.xz" \) -print -quit)
  [ -n "$file" ] || return 0 # built into this kernel: nothing to load
  case "$file" in
    *.xz) xz -dc "$file" >"$root/modules/$name.ko" ;;
    *) cp "$file" "$root/modules/$name.ko" ;;
  esac
  for dep in $(strings -a "$root/modules/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
    add_module "$dep"
  done
  echo "$name" >>"$root/modules/order"
}
for m in virtio_pci 9pnet_virtio 9p overlay; do add_module "$m"; done
cp "$repo/scripts/vm/init" "$root/init"
chmod +x "$root/init"

mkdir -p "$work/kit"
cp "$work/pkg/boot/vmlinuz-$release" "$work/kit/vmlinuz"
(cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$work/kit/initramfs.gz"
touch "$work/kit/ready"
rm -rf "$kit"
mv "$work/kit" "$kit"
# Kits of earlier kernels or init scripts are not used again.
find "$data_dir/vm" -mindepth 1 -maxdepth 1 -name 'linux-image-*' ! -path "$kit" -exec rm -rf {} +
echo "$kit"
