#!/usr/bin/env bash
# The README's first command: on a fresh Debian machine, as root, set everything up
# (scripts/setup.sh: Debian packages including redis-server, npm modules, native addon, TypeScript,
# language images) and start the service in the foreground: the API, the workers, and — when
# CELLBLOCK_REDIS_URL is unset — a private redis-server that stops with it.
# Settings are CELLBLOCK_* environment variables (README.md, "Configuration"); for example
#   CELLBLOCK_PORT=9090 bash scripts/start.sh
# Stop it with SIGTERM or Ctrl-C: no new jobs are taken, running ones finish, then it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "start: run as root (the sandbox needs namespaces, mounts and cgroups)" >&2
  exit 1
fi

bash scripts/setup.sh

# exec: the service gets this shell's pid and its signals.
exec bin/cellblock start
