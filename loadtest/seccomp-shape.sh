#!/bin/sh
# npm run bench:seccomp [-- ROUNDS]: builds loadtest/seccomp-shape.cc with the engine's own
# native/src/seccomp.cc in a scratch dir and runs it; the dir is removed however the run ends
# (Ctrl-C and kills included: the run is waited for in the background, so that a trap can stop it).
set -e
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
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
