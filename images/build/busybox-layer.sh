#!/bin/sh
# The tiny test image: the host's static busybox and a link per applet, nothing else. Builds in
# about a second, so that unit tests of the engine and the pool have a real image to run on.
# Usage: busybox-layer.sh ROOT BUSYBOX
set -eu
root=$1 busybox=$2
echo "==> busybox: $busybox"
file_type=$(od -An -c -N4 "$busybox" | tr -d ' ')
[ "$file_type" = '177ELF' ] || { echo "$busybox is not an ELF binary" >&2; exit 2; }
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# --list-full prints each applet with its conventional directory (bin/sh, usr/bin/env, ...).
"$root/bin/busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] || [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
