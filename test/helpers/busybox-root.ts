// A tiny container root for the engine's tests: Debian's static busybox with its applets, the
// mount points the engine needs, an /etc/passwd naming the sandbox user, and the static test
// programs of test/sandbox/programs (built with gcc -static). Built once per content hash into
// a directory under the system's tmp dir and reused; building is atomic (rename), so concurrent
// test processes share it safely.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUSYBOX = '/bin/busybox';
const PROGRAMS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../sandbox/programs');
/** Where the test programs live inside the root. */
export const PROGRAMS_IN_ROOT = '/opt/tests';

export class BusyboxRootUnavailable extends Error {
  override readonly name = 'BusyboxRootUnavailable';
}

function programSources(): string[] {
  return fs
    .readdirSync(PROGRAMS_DIR)
    .filter((f) => f.endsWith('.c'))
    .sort();
}

function contentHash(): string {
  const hash = crypto.createHash('sha256');
  hash.update(fs.readFileSync(BUSYBOX));
  hash.update(fs.readFileSync(fileURLToPath(import.meta.url)));
  for (const source of programSources()) {
    hash.update(source);
    hash.update(fs.readFileSync(path.join(PROGRAMS_DIR, source)));
  }
  return hash.digest('hex').slice(0, 16);
}

function build(dir: string): void {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'dev', 'tmp', 'box', 'etc', 'root', PROGRAMS_IN_ROOT.slice(1)]) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const applet of applets) {
    const link = path.join(dir, applet);
    if (applet === 'bin/busybox' || fs.existsSync(link)) continue;
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync('/bin/busybox', link);
  }
  // A setuid-root busybox: running it must not give the program root (nosuid, no_new_privs).
  fs.mkdirSync(path.join(dir, 'opt/suid'), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(dir, 'opt/suid/busybox'));
  fs.chmodSync(path.join(dir, 'opt/suid/busybox'), 0o4755);
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nsandbox:x:60000:60000:sandbox:/box:/bin/sh\n');
  fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\nsandbox:x:60000:\n');
  fs.writeFileSync(path.join(dir, 'etc/marker'), 'this is the busybox test root\n');
  for (const source of programSources()) {
    const output = path.join(dir, PROGRAMS_IN_ROOT.slice(1), source.replace(/\.c$/, ''));
    execFileSync('gcc', ['-static', '-O2', '-o', output, path.join(PROGRAMS_DIR, source)], { stdio: 'pipe' });
  }
}

let cached: string | null = null;

/** Returns the root's host path, building it if needed; throws BusyboxRootUnavailable when
 * busybox or gcc is missing (tests then skip with that message). */
export function busyboxRoot(): string {
  if (cached) return cached;
  if (!fs.existsSync(BUSYBOX)) {
    throw new BusyboxRootUnavailable(`${BUSYBOX} is missing: install Debian's busybox-static (scripts/setup.sh)`);
  }
  try {
    execFileSync('gcc', ['--version'], { stdio: 'pipe' });
  } catch {
    throw new BusyboxRootUnavailable('gcc is missing: install build-essential (scripts/setup.sh)');
  }
  const dir = path.join(os.tmpdir(), `cellblock-busybox-root-${contentHash()}`);
  if (!fs.existsSync(dir)) {
    const staging = fs.mkdtempSync(`${dir}.building-`);
    try {
      fs.chmodSync(staging, 0o755); // mkdtemp makes it 0700: the sandbox user must traverse it
      build(staging);
      fs.renameSync(staging, dir);
    } catch (error) {
      fs.rmSync(staging, { recursive: true, force: true });
      // Another process finished first: use its root.
      if (!fs.existsSync(dir)) throw error;
    }
  }
  cached = dir;
  return dir;
}
