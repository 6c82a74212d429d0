// The host's static busybox, copied into the tiny test image. A dynamically linked busybox would
// not run in a root without libc, so it is refused with a clear error.
import { existsSync, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import { ImageBuildError } from './errors.js';
import { sha256Hex as sha256 } from '../digest.js';

const CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];
const PT_INTERP = 3;

/** True when the 64-bit little-endian ELF file has no program interpreter (is static). */
export function isStaticElf64(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return false;
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (table.readUInt32LE(i * phentsize) === PT_INTERP) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

export interface HostBusybox {
  path: string;
  digest: string;
}

export function findHostBusybox(image: string, env: NodeJS.ProcessEnv = process.env): HostBusybox {
  const candidates = env.CELLBLOCK_BUSYBOX ? [env.CELLBLOCK_BUSYBOX] : CANDIDATES;
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new ImageBuildError(image, 'busybox', `no busybox at ${candidates.join(' or ')}; install Debian's busybox-static`);
  }
  if (!isStaticElf64(path)) {
    throw new ImageBuildError(image, 'busybox', `${path} is not a static x86-64/aarch64 ELF binary; install Debian's busybox-static`);
  }
  return { path, digest: sha256(readFileSync(path)) };
}
