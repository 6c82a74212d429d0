// File operations on cgroupfs shared by both backends: small synchronous reads and writes (each
// a few µs), directory removal with the retries the kernel sometimes needs, and killing whatever
// a cgroup still holds.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CgroupError } from './backend.js';

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
}

export function writeCgroupFile(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (error) {
    throw new CgroupError('write', file, codeOf(error));
  }
}

export function readCgroupFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new CgroupError('read', file, codeOf(error));
  }
}

/** The first integer of a file such as cpuacct.usage or memory.max_usage_in_bytes. */
export function readCgroupInteger(file: string): number {
  const value = Number.parseInt(readCgroupFile(file), 10);
  if (!Number.isFinite(value)) throw new CgroupError('parse', file, 'EINVAL');
  return value;
}

/** A `key value` line of a flat-keyed file (cpu.stat, memory.events, memory.oom_control). */
export function readCgroupKey(file: string, key: string): number {
  for (const line of readCgroupFile(file).split('\n')) {
    const [name, value] = line.split(' ');
    if (name === key) return Number(value);
  }
  return 0;
}

export function makeCgroupDir(dir: string): void {
  for (let attempt = 0; ; attempt++) {
    try {
      fs.mkdirSync(dir, { recursive: true });
      return;
    } catch (error) {
      // Another instance may remove the empty `cellblock` parent between our mkdirs: retry.
      if (codeOf(error) === 'ENOENT' && attempt < 3) continue;
      throw new CgroupError('mkdir', dir, codeOf(error));
    }
  }
}

export function cgroupPids(dir: string): number[] {
  try {
    return fs
      .readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  } catch {
    return [];
  }
}

export function killCgroupPids(dir: string): void {
  for (const pid of cgroupPids(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** rmdir with retries: a cgroup whose last task is still exiting is briefly EBUSY. */
export async function removeCgroupDir(dir: string, killLeftovers: (dir: string) => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (error) {
      const code = codeOf(error);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= 200) throw new CgroupError('rmdir', dir, code);
      killLeftovers(dir);
      await sleep(Math.min(1 + attempt, 20));
    }
  }
}

/** Removes a subtree depth-first, killing what each cgroup still holds. */
export async function removeCgroupTree(dir: string, killLeftovers: (dir: string) => void): Promise<void> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return;
    throw new CgroupError('readdir', dir, codeOf(error));
  }
  for (const entry of entries) {
    if (entry.isDirectory()) await removeCgroupTree(path.join(dir, entry.name), killLeftovers);
  }
  killLeftovers(dir);
  await removeCgroupDir(dir, killLeftovers);
}

/** rmdir that gives up quietly when the cgroup still has children (another instance's). */
export function removeCgroupDirIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch (error) {
    const code = codeOf(error);
    if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY') throw new CgroupError('rmdir', dir, code);
  }
}

export function listSubdirs(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}
