// Test fixtures for the pool: two tiny layers (a static busybox base and a top layer that
// overrides one file), made under a fresh mkdtemp dir, and checks for leftovers.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BUSYBOX = '/bin/busybox';

/** Why the pool's kernel tests cannot run here, or undefined when they can. */
export function poolSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount, overlayfs)';
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'overlayfs is not available in this kernel';
  try {
    readFileSync(BUSYBOX);
  } catch {
    return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  }
  return undefined;
}

export interface Scratch {
  dir: string;
  stateRoot: string;
  layerPaths: string[];
  remove(): void;
}

export function makeScratch(): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'cellblock-pooltest-'));
  const base = join(dir, 'layers', 'base');
  const top = join(dir, 'layers', 'top');
  for (const d of ['bin', 'etc', 'proc', 'dev', 'tmp']) mkdirSync(join(base, d), { recursive: true });
  copyFileSync(BUSYBOX, join(base, 'bin', 'busybox'));
  chmodSync(join(base, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'true', 'cat', 'ls', 'echo']) symlinkSync('busybox', join(base, 'bin', applet));
  writeFileSync(join(base, 'etc', 'layer'), 'base\n');
  writeFileSync(join(base, 'etc', 'base-only'), 'base\n');
  mkdirSync(join(top, 'etc'), { recursive: true });
  writeFileSync(join(top, 'etc', 'layer'), 'top\n');
  return {
    dir,
    stateRoot: join(dir, 'state'),
    layerPaths: [base, top],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Lines of /proc/self/mountinfo that mention `needle`. */
export function mountsMentioning(needle: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(needle));
}
