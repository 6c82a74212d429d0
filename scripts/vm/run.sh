#!/usr/bin/env bash
# Runs a command in a throwaway virtual machine whose system cgroup hierarchy is v2, and exits
# with its status: `bash scripts/vm/run.sh [--timeout SECONDS] -- COMMAND [ARGS...]`.
# For testing the cgroup v2 backend on a host whose own hierarchy is v1 (a host's controllers
# cannot be bound to both at once). The VM runs Debian's kernel (scripts/vm/kit.sh) under qemu's
# software emulation: KVM is not assumed (a nested hypervisor such as PVM boots only kernels
# built for it). It sees the host's files read-only under an overlay in its own memory, starts
# in the caller's working directory with the caller's PATH, HOME, CI, NO_COLOR and CELLBLOCK_*
# variables (and CELLBLOCK_IN_VM=1), and has only a loopback network.
# Exit status: the command's, or 125 when the VM could not run it (the reason on stderr).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

timeout_s=1200
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--timeout SECONDS] -- COMMAND [ARGS...]" >&2; exit 125; }

kit=$(bash "$repo/scripts/vm/kit.sh") || { echo "vm: the kernel kit could not be prepared" >&2; exit 125; }
job=$(mktemp -d /tmp/cellblock-vm-job-XXXXXX)
trap 'rm -rf "$job"' EXIT
{
  printf 'export PATH=%q HOME=%q CELLBLOCK_VM_CWD=%q CELLBLOCK_IN_VM=1\n' "$PATH" "${HOME:-/root}" "$PWD"
  # The caller's CI, NO_COLOR and CELLBLOCK_* settings (a test's own knobs among them).
  while IFS= read -r name; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done < <(compgen -e | grep -E '^(CI|NO_COLOR|CELLBLOCK_.*)$' | grep -vx CELLBLOCK_IN_VM)
} >"$job/env"
printf '%q ' "$@" >"$job/command"

# Two virtual CPUs, each a host thread (multi-threaded TCG), and half the host's memory, up to
# 8 GiB: the tests inside size themselves by the VM.
mem_mib=$(awk '/MemTotal/ { m = int($2 / 2048); print (m > 8192 ? 8192 : m) }' /proc/meminfo)
set +e
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp 2 -m "$mem_mib" \
  -nodefaults -no-user-config -display none -no-reboot \
  -serial stdio \
  -kernel "$kit/vmlinuz" -initrd "$kit/initramfs.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap" \
  -virtfs "local,path=$job,mount_tag=job,security_model=none"
qemu_status=$?
set -e
if [ -f "$job/status" ]; then
  exit "$(cat "$job/status")"
fi
if [ "$qemu_status" = 124 ]; then
  echo "vm: the command did not end within ${timeout_s}s" >&2
else
  echo "vm: the VM stopped (qemu status $qemu_status) before the command ended" >&2
fi
exit 125
