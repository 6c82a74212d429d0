#!/usr/bin/env bash
# Installs everything cellblock needs on a fresh Debian machine (as root) and builds it:
# Debian packages, npm dependencies, the native addon, and (unless CELLBLOCK_SKIP_IMAGES=1) the
# language images. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the project uses. One list, so that no machine depends on a hand install.
#   redis-server     the queue's store (tests start their own on a free port)
#   debootstrap      builds the base image layer
#   gpgv debian-archive-keyring  what debootstrap checks the suite's Release signature with;
#                    only its Recommends (gnupg, the keyring), which --no-install-recommends drops,
#                    and Debian 13's apt verifies with sqv, so a fresh trixie host may lack gpgv
#   busybox-static   the tiny test root for the engine's unit tests
#   bubblewrap       the peer the engine's benchmark compares against
#   build-essential  node-gyp's toolchain for native/
#   python3          node-gyp's too, and the interpreter the worker's mount agent runs
#                    (/usr/bin/python3, src/pool/mount-agent.ts)
#   iproute2         network namespace checks in tests
#   ca-certificates  apt over https mirrors
#   strace           traces the runtimes' start-up paths (scripts/startup-paths.ts, and its test)
PACKAGES=(redis-server debootstrap gpgv debian-archive-keyring busybox-static bubblewrap build-essential python3 iproute2 ca-certificates strace)

# Installs Debian packages, updating apt's lists first: they may be missing (images that remove
# them; a run where no package was missing skips the first update) or stale ("Unable to locate
# package" without an update).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt_install "${missing[@]}"
fi

# Node.js 22 or newer: an LTS line that still gets security fixes (20's ended in April 2026), with
# zlib.crc32, which checks Judge0's additional_files (22.2 or newer; 22.0-22.1 lack it). Debian 12
# ships 18 and Debian 13 20, and machines often carry 20: then the machine's node and npm fetch the
# official Node.js 22 build from the npm registry (the "node" package; the binaries and headers are
# in node-linux-<arch>), installed under /usr/local, which comes before /usr in root's PATH (not
# under npm's global prefix: NodeSource's npm has /usr, where it would overwrite the packaged node).
# Debian's own npm (/usr/bin/npm, `#!/usr/bin/env node`) then runs under that node, which lacks
# Debian's node's extra module path (/usr/share/nodejs): it still finds its modules (semver, ...)
# through Debian's link /usr/share/node_modules -> nodejs, on the ordinary walk up from
# /usr/share/nodejs/npm (tried in fresh Debian 12 and 13 roots: npm install and node-gyp work).
# Checked by what is used, not by the version's number alone.
node_ok() { node -e 'const [major] = process.versions.node.split(".").map(Number); process.exit(major >= 22 && typeof require("node:zlib").crc32 === "function" ? 0 : 1)' 2>/dev/null; }
if ! node_ok; then
  echo "setup: Node.js $(node --version 2>/dev/null || echo '(none)') is older than 22.2 (or lacks zlib.crc32); installing Node.js 22 from the npm registry"
  npm install --global --prefix /usr/local --no-audit --no-fund --loglevel=error node@22
  hash -r
  if ! node_ok; then
    echo "setup: $(command -v node) is still $(node --version 2>/dev/null || echo 'not working'); put /usr/local/bin first in PATH" >&2
    exit 1
  fi
fi

# node-gyp builds against the running node's headers; find them locally (no download).
if [ -z "${npm_config_nodedir:-}" ]; then
  node_root=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  for d in "$node_root" "$node_root"/node_modules/node-linux-* /usr /usr/local; do
    if [ -f "$d/include/node/node_api.h" ]; then export npm_config_nodedir="$d"; break; fi
  done
  if [ -z "${npm_config_nodedir:-}" ]; then
    echo "setup: node headers not found; installing Debian's libnode-dev"
    apt_install libnode-dev
    export npm_config_nodedir=/usr
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install --no-save` installs the lock file's versions, like `npm ci`; `npm ci` itself
  # refuses when a registry lacks other platforms' optional packages (msgpackr-extract's darwin
  # and win32 builds are missing from some mirrors), which it counts as lock drift.
  echo "setup: npm install (from package-lock.json)"
  npm install --no-save --no-audit --no-fund --loglevel=error
fi

# The addon is rebuilt only when its sources changed: a rebuild removes the built file first,
# which would break every cellblock process starting meanwhile on this machine.
addon=native/build/Release/cellblock_native.node
if [ ! -f "$addon" ] || [ -n "$(find native/src native/binding.gyp -newer "$addon" -print -quit)" ]; then
  echo "setup: building the native addon"
  npm run --silent build:native
fi
echo "setup: building the TypeScript"
npm run --silent build:ts

if [ "${CELLBLOCK_SKIP_IMAGES:-0}" != 1 ] && [ -f dist/src/bin/cellblock.js ]; then
  node dist/src/bin/cellblock.js images build
fi
echo "setup: done"
