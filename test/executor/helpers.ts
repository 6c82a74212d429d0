// Fixtures for the executor's tests: the data dir with built images, runtimes defined as data on
// the busybox test image, and checks that nothing of a run outlives it.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dataDirFromEnv } from '../../src/images/paths.js';
import { openImageStore } from '../../src/images/store.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { Runtime } from '../../src/images/types.js';
import type { Pool, PoolSlot } from '../../src/pool/index.js';
import type { RunResult, Verdict } from '../../src/sandbox/types.js';
import { MiB } from '../../src/units.js';

export const dataDir = dataDirFromEnv();

/** A pool for an executor on a fake stage runner (no sandbox): each slot a fresh work dir under
 * `dir` (made here) on no root, release and close doing nothing. Its files are chowned to the
 * sandbox's uid: root only. */
export function fakePool(dir: string): Pool<never> {
  mkdirSync(dir, { recursive: true });
  let slots = 0;
  return {
    take: async (image: string): Promise<PoolSlot<never>> => {
      const workDirHostPath = join(dir, `slot-${++slots}`);
      mkdirSync(workDirHostPath);
      return { image, root: { slotDir: workDirHostPath, rootDir: '/', workDirHostPath, workDir: '/box', uid: 60000, startupPathsFound: 0 } };
    },
    release: () => {},
    stats: () => ({ images: {} }),
    close: async () => {},
  } as unknown as Pool<never>;
}

/** A fake stage runner's result: `verdict` and `exitCode`, "1\n" on stdout, 1 ms and 1 byte. */
export function stageOutcome(verdict: Verdict, exitCode: number | null): RunResult {
  return {
    verdict,
    exitCode,
    signal: null,
    signalName: null,
    stdout: Buffer.from('1\n'),
    stderr: Buffer.alloc(0),
    stdoutTruncated: false,
    stderrTruncated: false,
    metrics: { cpuTimeMs: 1, wallTimeMs: 1, peakMemoryBytes: 1 },
  };
}

/** Why the executor's tests cannot run here (or undefined), given the images they need. */
export function executorSkipReason(images: string[]): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mounts, namespaces, cgroups)';
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'overlayfs is not available in this kernel';
  if (!existsSync(new URL('../../native/build/Release/cellblock_native.node', import.meta.url))) {
    return 'the native addon is not built (npm run build:native)';
  }
  const store = openImageStore(dataDir);
  const missing = images.filter((image) => !store.get(image));
  if (missing.length > 0) return `images not built in ${dataDir}: ${missing.join(', ')} (cellblock images build ${missing.join(' ')})`;
  return undefined;
}

const limits = {
  cpuTimeMs: 2000,
  wallTimeMs: 5000,
  memoryBytes: 64 * MiB,
  pids: 16,
  outputBytes: MiB,
  fileSizeBytes: 4 * MiB,
  openFiles: 64,
  stackBytes: 8 * MiB,
  tmpBytes: 4 * MiB,
  cpuCores: 1,
};

const busyboxBase = {
  language: 'sh',
  version: '1',
  aliases: [],
  image: 'busybox',
  env: { PATH: '/bin:/usr/bin', HOME: '/tmp' },
  defaultLimits: limits,
  maxLimits: { ...limits, wallTimeMs: 20_000, cpuTimeMs: 10_000 },
  helloWorld: { source: 'echo "Hello, World!"\n', stdout: 'Hello, World!\n' },
};

/** A shell script runtime on the busybox image. */
export const SH: Runtime = { ...busyboxBase, id: 'sh', sourceFile: 'main.sh', run: { argv: ['/bin/sh', '{entry}'] } };

/** A "compiled" runtime on the busybox image: the compile checks the syntax of the submitted
 * scripts and joins them into an executable `prog`, which the runs execute. Its variant `direct`
 * has no compile: the shell runs the entry script itself. */
export const SHC: Runtime = {
  ...busyboxBase,
  id: 'shc',
  sourceFile: 'main.sh',
  compile: { argv: ['/bin/sh', '-c', 'for f; do sh -n "$f" || exit 1; done; { echo "#!/bin/sh"; cat "$@"; } > prog && chmod 755 prog', 'compile', '{files}'] },
  run: { argv: ['./prog'] },
  variants: { direct: { run: { argv: ['/bin/sh', '{entry}', 'direct', '{args}'] } } },
};

/** A "build" on the busybox image: the compile runs the submitted script, which may leave what
 * it likes in the work dir for the runs; a run lists what it was given. */
export const BUILD: Runtime = {
  ...busyboxBase,
  id: 'build',
  sourceFile: 'build.sh',
  compile: { argv: ['/bin/sh', '{files}'] },
  run: { argv: ['/bin/sh', '-c', 'ls | wc -l'] },
};

/** /bin/true on the busybox image: the cheapest possible job. */
export const TRUE: Runtime = { ...busyboxBase, id: 'true', sourceFile: 'unused', run: { argv: ['/bin/true'] } };

export function imageRuntime(id: string): Runtime | undefined {
  return loadRuntimes().find((r) => r.id === id);
}

/** Pids of this process's live descendants. */
export function descendants(pid = process.pid): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let children: string;
    try {
      children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of children.trim().split(/\s+/).filter(Boolean).map(Number)) out.push(child, ...descendants(child));
  }
  return out;
}

/** Namespace files this process holds open (a leaked namespace would be pinned by one). */
export function openNamespaceFds(): string[] {
  const held: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (/^(mnt|pid|net|uts|ipc|cgroup):\[/.test(target)) held.push(target);
    } catch {
      // closed while listing
    }
  }
  return held;
}

/** cgroup directories under a parent in every v1 hierarchy or the v2 tree. */
export function cgroupDirsUnder(relativeParent: string): string[] {
  const roots = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? ['/sys/fs/cgroup']
    : ['cpu', 'cpuacct', 'memory', 'pids'].map((c) => `/sys/fs/cgroup/${c}`);
  const found: string[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      found.push(`${dir}/${e.name}`);
      walk(`${dir}/${e.name}`);
    }
  };
  for (const root of roots) walk(`${root}/${relativeParent}`);
  return found;
}
