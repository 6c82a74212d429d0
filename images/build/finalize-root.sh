#!/bin/sh
# Makes a base root usable as a sandbox root: the mount points the engine mounts over (the
# container's root is read-only, so they must exist in the image), the work dir /box owned by the
# sandbox user, a passwd/group entry for that user (uid/gid 60000) for tools that look it up, and
# a passwd entry named "sandbox" for each uid a pool gives its slots (60000-61023, group 60000:
# src/pool/uid-leases.ts), and no apt lists, caches, logs or host files (resolv.conf) left in the layer.
# Usage: finalize-root.sh ROOT
set -eu
root=$1
cd "$root"
echo "==> finalize: mount points, sandbox user 60000, no caches or docs"
mkdir -p proc dev sys tmp box etc root
chmod 1777 tmp
chmod 0755 box
chown 60000:60000 box
touch etc/passwd etc/group
grep -q '^sandbox:' etc/passwd || echo 'sandbox:x:60000:60000:cellblock sandbox:/box:/usr/sbin/nologin' >>etc/passwd
if ! grep -q '^sandbox:x:60001:' etc/passwd; then
  uid=60001
  while [ "$uid" -le 61023 ]; do
    echo "sandbox:x:$uid:60000:cellblock sandbox:/box:/usr/sbin/nologin"
    uid=$((uid + 1))
  done >>etc/passwd
fi
grep -q '^sandbox:' etc/group || echo 'sandbox:x:60000:' >>etc/group
grep -q '^root:' etc/passwd || echo 'root:x:0:0:root:/root:/bin/sh' >>etc/passwd
grep -q '^root:' etc/group || echo 'root:x:0:' >>etc/group
echo cellblock >etc/hostname
# resolv.conf is the build host's; an empty file stays as the mount point builds bind over.
: >etc/resolv.conf
if [ -d etc/dpkg/dpkg.cfg.d ]; then
  # Nothing in a sandbox reads documentation or message translations: keep them out of this
  # layer and, through dpkg's path filters, out of every layer built on it.
  cat >etc/dpkg/dpkg.cfg.d/cellblock-slim <<'SLIM'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
SLIM
  find usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
  find usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
  # The man section dirs stay: update-alternatives (openjdk's postinst) links into man1.
  find usr/share/man -mindepth 1 ! -type d -delete 2>/dev/null || true
  rm -rf usr/share/info/* usr/share/lintian/*
  find usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
fi
if [ -d etc/apt ]; then
  # Sources are given to each build, never kept: images are not updated in place.
  : >etc/apt/sources.list
  rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb var/cache/apt/archives/partial/*
  rm -f var/log/bootstrap.log var/log/dpkg.log var/log/alternatives.log var/log/apt/*
  rm -f var/cache/debconf/*-old var/lib/dpkg/*-old
fi
