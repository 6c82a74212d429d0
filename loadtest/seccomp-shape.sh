#!/bin/sh
# npm run bench:seccomp [-- ROUNDS]: builds loadtest/seccomp-shape.cc with the engine's own
# native/src/seccomp.cc in a scratch dir and runs it; the dir is removed however the run ends
# (Ctrl-C and kills included: the run is waited for in the background, so that a trap can stop it).
# The dir is named as the TypeScript benchmarks name theirs (loadtest/service/scratch.ts), so that
# one left by a SIGKILLed run is removed by the next of them to start.
set -e
cd "$(dirname "$0")/.."
root="${TMPDIR:-/tmp}/cellblock-bench"
mkdir -p -m 700 "$root"
if [ -L "$root" ] || [ ! -d "$root" ] || [ ! -O "$root" ]; then
  echo "$root is not a directory of ours: not using it for scratch dirs" >&2
  exit 1
fi
dir=$(mktemp -d "$root/bench-seccomp-$$-XXXXXX")
child=
stop() {
  [ -n "$child" ] && kill "$child" 2>/dev/null
  exit "$1"
}
trap 'rm -rf "$dir"' EXIT
trap 'stop 130' INT
trap 'stop 143' TERM
trap 'stop 129' HUP
g++ -O2 -std=c++17 -Wall -I native/src -o "$dir/seccomp-shape" loadtest/seccomp-shape.cc native/src/seccomp.cc
"$dir/seccomp-shape" "$@" &
child=$!
wait "$child"
