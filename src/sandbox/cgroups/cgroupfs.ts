// File operations on cgroupfs shared by both backends: small synchronous reads and writes (each
// a few µs), directory removal with the retries the kernel sometimes needs, and killing whatever
// a cgroup still holds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../native.js';
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
export function parseCgroupInteger(text: string, file: string): number {
  const value = Number.parseInt(text, 10);
  if (!Number.isFinite(value)) throw new CgroupError('parse', file, 'EINVAL');
  return value;
}

/** The marks a service manager leaves on a cgroup it delegated: systemd 251+ sets
 * trusted.delegate (and from 253 user.delegate, readable without privilege) to "1". */
const DELEGATION_MARKS = ['trusted.delegate', 'user.delegate'];

/** Which of `dir` and its parent (not above `top`) carries a delegation mark, with the mark's
 * name: `dir` itself for a service started in the cgroup delegated to it, its parent for one
 * that systemd started in a subgroup of it (DelegateSubgroup=). No higher: a cgroup further up
 * is delegated to another manager (a user's systemd), not to this process. Undefined where
 * neither is marked (a manager that sets no mark, such as systemd before 251, or a cgroup not
 * delegated at all). */
export function findDelegatedCgroup(dir: string, top: string): { dir: string; mark: string } | undefined {
  const candidates = dir === top || !dir.startsWith(`${top}/`) ? [dir] : [dir, path.dirname(dir)];
  for (const candidate of candidates) {
    for (const mark of DELEGATION_MARKS) if (native.readXattr(candidate, mark) === '1') return { dir: candidate, mark };
  }
  return undefined;
}

export function readCgroupInteger(file: string): number {
  return parseCgroupInteger(readCgroupFile(file), file);
}

/** A `key value` line of a flat-keyed file (cpu.stat, memory.events, memory.oom_control). */
export function parseCgroupKey(text: string, key: string): number {
  for (const line of text.split('\n')) {
    const [name, value] = line.split(' ');
    if (name === key) return Number(value);
  }
  return 0;
}

export function readCgroupKey(file: string, key: string): number {
  return parseCgroupKey(readCgroupFile(file), key);
}

/** A cgroup file kept open from preparing to teardown, read and written at offset 0: one system
 * call per access on the job's critical path, where open and close are most of the cost. */
export class OpenCgroupFile {
  private fd: number | null;
  private readonly buffer = Buffer.alloc(4096);

  constructor(
    readonly file: string,
    mode: 'r' | 'r+',
  ) {
    try {
      this.fd = fs.openSync(file, mode);
    } catch (error) {
      throw new CgroupError('open', file, codeOf(error));
    }
  }

  private open(): number {
    if (this.fd === null) throw new CgroupError('read', this.file, 'EBADF');
    return this.fd;
  }

  read(): string {
    try {
      const length = fs.readSync(this.open(), this.buffer, 0, this.buffer.length, 0);
      return this.buffer.toString('utf8', 0, length);
    } catch (error) {
      if (error instanceof CgroupError) throw error;
      throw new CgroupError('read', this.file, codeOf(error));
    }
  }

  readInteger(): number {
    return parseCgroupInteger(this.read(), this.file);
  }

  readKey(key: string): number {
    return parseCgroupKey(this.read(), key);
  }

  write(value: string): void {
    try {
      fs.writeSync(this.open(), value, 0);
    } catch (error) {
      if (error instanceof CgroupError) throw error;
      throw new CgroupError('write', this.file, codeOf(error));
    }
  }

  /** The open descriptor, for the engine to read at the run's end (RunCgroup.accountingFds). */
  get descriptor(): number {
    return this.open();
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** Closes a run cgroup's accounting files; returns null for the field that held them. */
export function closeCgroupFiles(files: Record<string, OpenCgroupFile> | null): null {
  for (const file of Object.values(files ?? {})) file.close();
  return null;
}

/** A run cgroup's accounting files, which exist only after startAccounting. */
export function startedAccounting<T>(files: T | null, file: string): T {
  if (!files) throw new CgroupError('read', file, 'EBADF', 'cgroup accounting was not started');
  return files;
}

/** The limits a run cgroup holds, so that a second application writes only what changed. */
export interface CgroupLimitValues {
  memoryBytes: number;
  pids: number;
  cpuCores: number;
}

/** Makes `dir` and its missing parents. Refuses (CgroupError) with the dir whose mkdir failed, its
 * errno and what to do about it (mkdirFailure). */
export function makeCgroupDir(dir: string): void {
  for (let attempt = 0; ; attempt++) {
    let failed: { dir: string; code: string } | undefined;
    try {
      fs.mkdirSync(dir, { recursive: true });
      return;
    } catch (error) {
      failed = { dir, code: codeOf(error) };
    }
    // Node's recursive mkdir reports every failure of a missing dir's mkdir as ENOENT (a read-only
    // cgroup mount's EROFS among them): one level at a time, each mkdir says its own.
    if (failed.code === 'ENOENT') failed = makeDirsOneByOne(dir);
    if (failed === undefined) return;
    // Another instance may remove the empty `cellblock` parent between our mkdirs: retry.
    if (failed.code === 'ENOENT' && attempt < 3) continue;
    throw mkdirFailure(failed.dir, failed.code);
  }
}

/** Makes `dir`'s missing parents, then `dir`, each alone: the first mkdir that fails, and its errno. */
function makeDirsOneByOne(dir: string): { dir: string; code: string } | undefined {
  const missing: string[] = [];
  for (let at = dir; !fs.existsSync(at) && path.dirname(at) !== at; at = path.dirname(at)) missing.unshift(at);
  for (const at of missing) {
    try {
      fs.mkdirSync(at);
    } catch (error) {
      // Made meanwhile by another instance: on to the next.
      if (codeOf(error) !== 'EEXIST') return { dir: at, code: codeOf(error) };
    }
  }
  return undefined;
}

/** A mkdir of `dir` that failed with errno `code`, in one line with what to do about it. */
function mkdirFailure(dir: string, code: string): CgroupError {
  return new CgroupError('mkdir', dir, code, `cannot make a cgroup: mkdir ${dir} failed with ${code}: ${MKDIR_ADVICE[code] ?? "a worker's sandbox makes cgroups there at its start and for each job"}`);
}

const MKDIR_REFUSED =
  'this process may not make cgroups there: run the workers as root, with a cgroup tree their manager lets them write (systemd: Delegate=yes, ProtectControlGroups= off)';
/** What to do about a cgroup that cannot be made, by its errno. */
const MKDIR_ADVICE: Record<string, string> = {
  EROFS: "the cgroup filesystem is mounted read-only here (a container's default; systemd's ProtectControlGroups=): mount it read-write (docker run -v /sys/fs/cgroup:/sys/fs/cgroup:rw with --cgroupns=host, or --privileged) or run the workers on the host",
  EACCES: MKDIR_REFUSED,
  EPERM: MKDIR_REFUSED,
};

/** Makes and removes a cgroup under each of `parents` (made too where missing, and removed again
 * when left empty), as a worker's sandbox makes its instance there at its start: what reading
 * cannot tell (a read-only cgroup mount, a parent this process may not write) is refused by the
 * kernel here, in the preflight, rather than at each worker's start. Each mkdir is not recursive:
 * Node's recursive mkdir reports EROFS as ENOENT. `probeName` must be no instance's (an instance
 * without a lock file is never reclaimed: Sandbox.cleanupStale). */
export function probeCgroupParents(parents: readonly string[], probeName: string): void {
  for (const parent of parents) {
    const probe = path.join(parent, probeName);
    let madeParent = false;
    let madeProbe = false;
    /** The dir whose mkdir is under way (the one that failed, if one does). */
    let making = parent;
    let failed: string | undefined;
    try {
      if (!fs.existsSync(parent)) {
        try {
          fs.mkdirSync(parent);
          madeParent = true;
        } catch (error) {
          // Another worker made it meanwhile: probed under all the same.
          if (codeOf(error) !== 'EEXIST') throw error;
        }
      }
      making = probe;
      fs.mkdirSync(probe);
      madeProbe = true;
    } catch (error) {
      failed = codeOf(error);
    }
    // Only what was made: on a read-only mount even the rmdir of a missing dir fails (EROFS).
    if (madeProbe) removeCgroupDirIfEmpty(probe);
    if (madeParent) removeCgroupDirIfEmpty(parent);
    if (failed !== undefined) throw mkdirFailure(making, failed);
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

/** SIGKILLs every process a cgroup of ours holds. Refuses (CgroupError EINVAL) a hierarchy's root,
 * known by a parent dir that is no cgroup: its cgroup.procs lists every process of the machine not
 * in a child cgroup, and a root's rmdir fails with EBUSY as a busy cgroup's does, so a wrong path
 * handed to a removal would lead it here.
 *
 * A pid read from cgroup.procs may belong to a stranger by the time it is signalled: the process
 * that held it can end and be reaped (by its parent, or by the kernel as its namespace dies), and
 * the pid be given to a new process of the host. So each pid gets a pidfd, which names the
 * process it was opened for and no other, and is signalled only if a second read of cgroup.procs,
 * made after the pidfds were opened, still lists it: the pid's holder then is the pidfd's process
 * (ours), or that process has ended since and the signal finds nothing (the pid's new holder, if
 * it is in the cgroup, is ours and is killed on the caller's next round). Where no pidfd can be
 * had, or its signal is refused (a kernel before 5.3: ENOSYS; a seccomp profile of the worker's
 * own container that refuses system calls it does not know: EPERM; no descriptor left: EMFILE),
 * the pids still listed are killed by number, which narrows the window to the time between the
 * second read and the kill. */
export function killCgroupPids(dir: string): void {
  killPidsListedTwice(dir, cgroupPids);
}

/** The pidfd calls killPidsListedTwice makes: the addon's, or a test's. */
export type PidfdCalls = Pick<typeof native, 'openPidfd' | 'signalPidfd'>;

/** killCgroupPids with the listing (and the pidfd calls) given: for tests. */
export function killPidsListedTwice(dir: string, listPids: (dir: string) => number[], pidfdCalls: PidfdCalls = native): void {
  if (!fs.existsSync(path.join(path.dirname(path.resolve(dir)), 'cgroup.procs'))) {
    throw new CgroupError('kill', dir, 'EINVAL', `${dir} is no cgroup below a hierarchy's root: not killing what it holds`);
  }
  // v2 lists a process outside the reader's pid namespace as 0, which kill() reads as "my
  // process group".
  const listed = listPids(dir).filter((pid) => pid > 0);
  if (listed.length === 0) return;
  const pidfds = listed.map((pid) => pidfdCalls.openPidfd(pid));
  try {
    const listedAgain = new Set(listPids(dir));
    listed.forEach((pid, i) => {
      if (!listedAgain.has(pid)) return;
      const pidfd = pidfds[i]!;
      const { ESRCH } = os.constants.errno;
      // ESRCH: the process had ended before its pidfd was opened, or before the signal.
      const failed = pidfd >= 0 ? pidfdCalls.signalPidfd(pidfd, os.constants.signals.SIGKILL) : -pidfd;
      if (failed !== 0 && failed !== ESRCH) killByPid(pid);
    });
  } finally {
    for (const pidfd of pidfds) if (pidfd >= 0) fs.closeSync(pidfd);
  }
}

function killByPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** rmdir with retries: a cgroup whose last task is still exiting is briefly EBUSY. Through
 * libuv's thread pool: a v1 memory cgroup's rmdir moves its charged pages to the parent, ~1 ms
 * of kernel time per run cgroup here, which a synchronous call spent on the event loop, in the
 * middle of the next job's start or result. */
export async function removeCgroupDir(dir: string, killLeftovers: (dir: string) => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.promises.rmdir(dir);
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
