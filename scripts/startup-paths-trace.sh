#!/usr/bin/env bash
# scripts/startup-paths.ts's trace, run in a private mount namespace of its own (unshare --mount
# --propagation private), whose end takes every mount here with it. Sets up a root as the pool
# makes one and traces each stage in it, in order.
#   $1 the image's lowerdir (top layer first)
#   $2 the scratch dir: fs/ (mount point of the root's tmpfs), files/ (the sources), <stage>.env
#      and <stage>.argv (NUL-separated: a stage's own, its limit placeholders expanded with its
#      limits); each stage's trace is written to <stage>.trace
#   $3 the work dir inside the root, $4 uid:gid of the sandbox user, $5 the engine's mount points
#   (ENGINE_MOUNT_POINTS, comma-separated: each is mounted here as the engine mounts it, and one
#   this script does not know stops it), then the stages' names.
set -euo pipefail
lower=$1 scratch=$2 work_dir=$3 ids=$4
IFS=, read -r -a mount_points <<< "$5"
shift 5
strace=$(command -v strace) chroot=$(command -v chroot)
fs=$scratch/fs root=$scratch/fs/root
mount -t tmpfs -o size=1g,mode=0755 cellblock-trace "$fs"
mkdir "$fs/upper" "$fs/work" "$root"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$fs/upper,workdir=$fs/work" "$root"
for dir in "${mount_points[@]}" "$work_dir"; do mkdir -p "$root/$dir"; done
for dir in "${mount_points[@]}"; do
  case $dir in
    proc) mount -t proc proc "$root/proc" ;;
    dev) mount --rbind /dev "$root/dev" ;;
    tmp) mount -t tmpfs -o mode=1777 tmpfs "$root/tmp" ;;
    *) echo "the engine mounts /$dir and this trace does not: add its mount to $0" >&2; exit 1 ;;
  esac
done
cp -R "$scratch/files/." "$root/$work_dir/"
chown -R "$ids" "$root/$work_dir"
for stage; do
  mapfile -d '' -t environment < "$scratch/$stage.env"
  mapfile -d '' -t argv < "$scratch/$stage.argv"
  if ! env -i "${environment[@]}" "$strace" -f -qq -s 65535 -e trace=%file -o "$scratch/$stage.trace" \
      "$chroot" --userspec="$ids" "$root" /bin/sh -c 'cd "$1" && unset PWD OLDPWD && shift && exec "$@"' sh "/$work_dir" "${argv[@]}" \
      < /dev/null > "$scratch/$stage.output" 2>&1; then
    echo "$stage failed:" >&2
    tail -c 4000 "$scratch/$stage.output" >&2
    exit 1
  fi
done
