// Checks a spec before anything touches the kernel and fills the engine's few defaults. A bad
// spec is a SandboxSpecError naming the field, never a crash deeper down.
import fs from 'node:fs';
import path from 'node:path';
import { MAX_TIME_LIMIT_MS, MiB } from '../units.js';
import type { ContainerSpec, Limits, StartSpec, TerminalSize } from './types.js';
import { SandboxSpecError } from './types.js';

export const DEFAULT_WORK_DIR = '/box';
export const DEFAULT_HOSTNAME = 'cellblock';
export const DEFAULT_TMP_BYTES = 64 * MiB;
/** Searched when argv[0] has no '/' and env has no PATH. */
export const DEFAULT_SEARCH_PATH = '/usr/local/bin:/usr/bin:/bin';

/** Of a run's memory limit, what is kept for the kernel's charges before execve other than
 * argv and env (leastMemoryBytes): 32-48 KiB of them were measured (Linux 6.18, cgroup v1), a
 * limit of 32 KiB took Node down and one of 48 KiB did not. Also the least memoryBytes of all. */
export const EXEC_MEMORY_RESERVE_BYTES = 1 * MiB;
const POINTER_BYTES = 8;

/** The least memory limit a run of argv and env may have. Until execve gives it memory of its
 * own, the program's child runs on Node's (CLONE_VM, native/src/namespaces.h) inside the run's
 * cgroup, and what the kernel charges to that cgroup meanwhile has to fit under the limit: the
 * child's own kernel objects, and exec's copy of argv and env into the new program's stack. A
 * charge that does not fit wakes the cgroup's OOM killer, whose only candidate is the child;
 * it kills the child and every process sharing its memory: Node. */
export function leastMemoryBytes(argv: readonly string[], env: readonly string[]): number {
  let stringsBytes = 0;
  for (const s of argv) stringsBytes += Buffer.byteLength(s) + 1 + POINTER_BYTES;
  for (const s of env) stringsBytes += Buffer.byteLength(s) + 1 + POINTER_BYTES;
  return EXEC_MEMORY_RESERVE_BYTES + stringsBytes + 2 * POINTER_BYTES;
}

/** env as execve takes it: NAME=value strings. */
export function envStrings(envRecord: Record<string, string>): string[] {
  return Object.entries(envRecord).map(([key, value]) => `${key}=${value}`);
}

const LIMIT_FIELDS: (keyof Limits)[] = [
  'cpuTimeMs',
  'wallTimeMs',
  'memoryBytes',
  'pids',
  'outputBytes',
  'fileSizeBytes',
  'openFiles',
  'stackBytes',
  'tmpBytes',
  'cpuCores',
];
const INTEGER_LIMITS = new Set<keyof Limits>(['memoryBytes', 'pids', 'outputBytes', 'fileSizeBytes', 'openFiles', 'stackBytes', 'tmpBytes']);
/** The limits at most MAX_TIME_LIMIT_MS (src/units.ts: why). */
const TIME_LIMITS: (keyof Limits)[] = ['cpuTimeMs', 'wallTimeMs'];
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})$/;

function noNul(field: string, value: string): void {
  if (value.includes('\0')) throw new SandboxSpecError(field, 'must not contain NUL bytes');
}

function absolutePath(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new SandboxSpecError(field, 'must be a non-empty string');
  noNul(field, value);
  if (!path.isAbsolute(value)) throw new SandboxSpecError(field, 'must be an absolute path');
  return path.normalize(value);
}

/** A real directory: a symlink where a mount point should be would send the mount outside the
 * root (the kernel follows it on the host side). */
function existingDir(field: string, value: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(value);
  } catch {
    throw new SandboxSpecError(field, `${value} does not exist`);
  }
  if (stat.isSymbolicLink()) throw new SandboxSpecError(field, `${value} is a symlink`);
  if (!stat.isDirectory()) throw new SandboxSpecError(field, `${value} is not a directory`);
}

export interface CheckedContainerSpec {
  rootDir: string;
  workDirHostPath: string;
  workDir: string;
  hostname: string;
  tmpBytes: number;
  limits?: Limits;
  uid?: number;
  ignoreSigpipe: boolean;
}

/** A uid or gid the program may run as: not root, not the kernel's "no id" (2^32 - 1). */
export function isSandboxId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value < 2 ** 32 - 1;
}

export function checkContainerSpec(spec: ContainerSpec): CheckedContainerSpec {
  if (spec === null || typeof spec !== 'object') throw new SandboxSpecError('spec', 'must be an object');
  const rootDir = absolutePath('rootDir', spec.rootDir);
  existingDir('rootDir', rootDir);
  const workDirHostPath = absolutePath('workDirHostPath', spec.workDirHostPath);
  existingDir('workDirHostPath', workDirHostPath);
  const workDir = absolutePath('workDir', spec.workDir ?? DEFAULT_WORK_DIR);
  if (workDir === '/') throw new SandboxSpecError('workDir', 'must not be /');
  for (const mountPoint of ['/proc', '/dev', '/tmp', workDir]) {
    existingDir('rootDir', path.join(rootDir, mountPoint));
  }
  const hostname = spec.hostname ?? DEFAULT_HOSTNAME;
  if (typeof hostname !== 'string' || !HOSTNAME.test(hostname)) {
    throw new SandboxSpecError('hostname', 'must be 1-63 letters, digits or dashes');
  }
  const limits = spec.limits === undefined ? undefined : checkLimits(spec.limits);
  const tmpBytes = spec.tmpBytes ?? limits?.tmpBytes ?? DEFAULT_TMP_BYTES;
  if (!Number.isSafeInteger(tmpBytes) || tmpBytes <= 0) throw new SandboxSpecError('tmpBytes', 'must be a positive integer');
  if (spec.uid !== undefined && !isSandboxId(spec.uid)) throw new SandboxSpecError('uid', 'must be a non-root id');
  if (spec.ignoreSigpipe !== undefined && typeof spec.ignoreSigpipe !== 'boolean') throw new SandboxSpecError('ignoreSigpipe', 'must be a boolean');
  const ignoreSigpipe = spec.ignoreSigpipe === true;
  return { rootDir, workDirHostPath, workDir, hostname, tmpBytes, limits, ignoreSigpipe, ...(spec.uid !== undefined ? { uid: spec.uid } : {}) };
}

export function checkLimits(limits: Limits): Limits {
  if (limits === null || typeof limits !== 'object') throw new SandboxSpecError('limits', 'must be an object');
  for (const field of LIMIT_FIELDS) {
    const value = limits[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new SandboxSpecError(`limits.${field}`, 'must be a positive finite number');
    }
    if (INTEGER_LIMITS.has(field) && !Number.isSafeInteger(value)) {
      throw new SandboxSpecError(`limits.${field}`, 'must be an integer');
    }
    if (TIME_LIMITS.includes(field) && value > MAX_TIME_LIMIT_MS) {
      throw new SandboxSpecError(`limits.${field}`, `must be at most ${MAX_TIME_LIMIT_MS} (2^31 - 1 ms, 24.8 days)`);
    }
  }
  if (limits.memoryBytes < EXEC_MEMORY_RESERVE_BYTES) {
    throw new SandboxSpecError('limits.memoryBytes', `must be at least ${EXEC_MEMORY_RESERVE_BYTES} (1 MiB), what the kernel may charge to a run before its program starts`);
  }
  return limits;
}

export interface CheckedStartSpec {
  argv: string[];
  env: string[];
  searchPath: string;
  cwd: string;
  stdin: Buffer;
  limits: Limits;
  /** 0: never. */
  backgroundAfterCpuMs: number;
  stderrToStdout: boolean;
}

export function checkStartSpec(spec: StartSpec, workDir: string): CheckedStartSpec {
  if (spec === null || typeof spec !== 'object') throw new SandboxSpecError('spec', 'must be an object');
  if (!Array.isArray(spec.argv) || spec.argv.length === 0) throw new SandboxSpecError('argv', 'must be a non-empty array');
  spec.argv.forEach((arg, i) => {
    if (typeof arg !== 'string') throw new SandboxSpecError(`argv[${i}]`, 'must be a string');
    noNul(`argv[${i}]`, arg);
  });
  if (spec.argv[0] === '') throw new SandboxSpecError('argv[0]', 'must not be empty');
  const envRecord = spec.env ?? { PATH: DEFAULT_SEARCH_PATH };
  if (envRecord === null || typeof envRecord !== 'object') throw new SandboxSpecError('env', 'must be an object');
  for (const [key, value] of Object.entries(envRecord)) {
    if (key === '' || key.includes('=')) throw new SandboxSpecError(`env.${key}`, 'name must be non-empty and have no "="');
    if (typeof value !== 'string') throw new SandboxSpecError(`env.${key}`, 'must be a string');
    noNul(`env.${key}`, key + value);
  }
  const env = envStrings(envRecord);
  const cwd = absolutePath('cwd', spec.cwd ?? workDir);
  let stdin: Buffer;
  if (spec.stdin === undefined) stdin = Buffer.alloc(0);
  else if (typeof spec.stdin === 'string') stdin = Buffer.from(spec.stdin, 'utf8');
  else if (spec.stdin instanceof Uint8Array) stdin = Buffer.from(spec.stdin.buffer, spec.stdin.byteOffset, spec.stdin.byteLength);
  else throw new SandboxSpecError('stdin', 'must be a string or bytes');
  const limits = checkLimits(spec.limits);
  const leastMemory = leastMemoryBytes(spec.argv, env);
  if (limits.memoryBytes < leastMemory) {
    throw new SandboxSpecError(
      'limits.memoryBytes',
      `must be at least ${leastMemory} for this argv and env: ${leastMemory - EXEC_MEMORY_RESERVE_BYTES} bytes of them, which execve copies inside the run's cgroup, and 1 MiB`,
    );
  }
  return {
    argv: spec.argv,
    env,
    searchPath: envRecord.PATH ?? DEFAULT_SEARCH_PATH,
    cwd,
    stdin,
    limits,
    backgroundAfterCpuMs: checkBackgroundAfterCpuMs(spec.backgroundAfterCpuMs),
    stderrToStdout: checkStderrToStdout(spec.stderrToStdout),
  };
}

function checkStderrToStdout(value: boolean | undefined): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new SandboxSpecError('stderrToStdout', 'must be a boolean');
  return value;
}

function checkBackgroundAfterCpuMs(value: number | undefined): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new SandboxSpecError('backgroundAfterCpuMs', 'must be a non-negative number of milliseconds of CPU time');
  }
  return value;
}

/** Which field of a terminal's size struct winsize could not hold (whole cells, 1-65535 each),
 * or undefined: a predicate, for sizes that arrive as JSON on every resize. */
export function terminalSizeFault(size: unknown): { field: string; reason: string } | undefined {
  for (const field of ['rows', 'cols'] as const) {
    const value = (size as Partial<TerminalSize> | null)?.[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
      return { field: `terminal.${field}`, reason: 'must be an integer 1-65535' };
    }
  }
  return undefined;
}

/** A terminal's size as struct winsize holds it: whole cells, 1-65535 each. */
export function checkTerminalSize(size: TerminalSize): void {
  const fault = terminalSizeFault(size);
  if (fault) throw new SandboxSpecError(fault.field, fault.reason);
}
