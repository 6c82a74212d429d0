#!/bin/sh
# A Debian base root by debootstrap. Run inside a private mount+PID namespace (the builder does),
# so that the proc/sys mounts debootstrap makes in the target vanish with it, even on failure.
# Usage: debootstrap-layer.sh ROOT SUITE VARIANT MIRROR CACHE_DIR [INCLUDE,...]
set -eu
root=$1 suite=$2 variant=$3 mirror=$4 cache=$5 include=${6:-}
echo "==> debootstrap --variant=$variant $suite (from $mirror)"
mkdir -p "$cache"
set -- --variant="$variant" --cache-dir="$cache"
[ -z "$include" ] || set -- "$@" --include="$include"
debootstrap "$@" "$suite" "$root" "$mirror"
