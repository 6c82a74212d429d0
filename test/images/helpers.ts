// Shared by the image tests: scratch dirs, definition dirs made of JSON objects, and the checks
// that decide whether a test can run on this machine (root, overlayfs, unshare).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultDefinitionsDir } from '../../src/images/paths.js';

export function scratchDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `cellblock-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A definitions dir holding `defs` (name → definition object) and the repo's recipes. */
export function definitionsDir(root: string, defs: Record<string, unknown>): string {
  const dir = join(root, 'defs');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'build'))) symlinkSync(join(defaultDefinitionsDir(), 'build'), join(dir, 'build'));
  for (const [name, def] of Object.entries(defs)) {
    writeFileSync(join(dir, `${name}.json`), typeof def === 'string' ? def : JSON.stringify(def, null, 2));
  }
  return dir;
}

/** Why layer builds cannot run here, or undefined when they can. */
export function whyNoLayerBuilds(): string | undefined {
  if (process.getuid?.() !== 0) return 'image builds need root (mounts, chroot)';
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'the kernel has no overlayfs';
  try {
    execFileSync('unshare', ['--mount', '--pid', '--fork', '--kill-child', 'true'], { stdio: 'ignore' });
  } catch {
    return 'unshare --mount --pid --fork --kill-child does not work here';
  }
  if (!existsSync('/bin/busybox') && !existsSync('/usr/bin/busybox')) return 'no busybox (install busybox-static)';
  return undefined;
}

/** Mount points at or below `path`. Other mounts that merely use files there (a pool's overlay
 * over stored layers) do not count. */
export { mountPointsUnder as mountsUnder } from '../../src/pool/mountinfo.js';
