#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh: Debian packages, npm, native addon, TypeScript, images)
# and runs the whole test suite on the real kernel, one file at a time (the files share the
# machine's cgroups and cores; a file's own tests decide their concurrency). On a cgroup v1 host,
# test/vm/cgroup-v2.test.ts runs the engine's, pool's, executor's and end-to-end tests again in a cgroup v2 VM
# (scripts/vm/, which installs qemu and fetches a Debian kernel on first use).
# Extra arguments select test files: bash scripts/test.sh test/sandbox/run.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find test -name '*.test.ts' | sort)
fi
echo "test: ${#files[@]} files"
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
