// Shared setup of the engine's tests: one sandbox per test file, the busybox root, a fresh work
// dir per run under one mkdtemp dir, and generous default limits. Tests that cannot run here
// (not root, no busybox/gcc) skip with the reason.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { MiB } from '../../src/units.js';
import { createSandbox } from '../../src/sandbox/index.js';
import { detectCgroupLayout } from '../../src/sandbox/cgroups/detect.js';
import type { Limits, RunResult, RunSpec, Sandbox, SandboxOptions } from '../../src/sandbox/index.js';
import { busyboxRoot, BusyboxRootUnavailable, PROGRAMS_IN_ROOT } from '../helpers/busybox-root.js';

export const DEFAULT_LIMITS: Limits = {
  cpuTimeMs: 5000,
  wallTimeMs: 10000,
  memoryBytes: 256 * MiB,
  pids: 32,
  outputBytes: 1 * MiB,
  fileSizeBytes: 16 * MiB,
  openFiles: 64,
  stackBytes: 8 * MiB,
  tmpBytes: 16 * MiB,
  cpuCores: 1,
};

export function program(name: string): string {
  return `${PROGRAMS_IN_ROOT}/${name}`;
}

function unavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'the engine needs root (namespaces, mounts, cgroups)';
  try {
    busyboxRoot();
  } catch (error) {
    if (error instanceof BusyboxRootUnavailable) return error.message;
    throw error;
  }
  return null;
}

/** `skip` is the reason every test of the file must skip, or false. */
export const skip: string | false = unavailableReason() ?? false;
if (skip) console.log(`SKIP sandbox tests: ${skip}`);

/** The system's cgroup layout, or null where none is usable. */
export const systemCgroupLayout = (() => {
  try {
    return detectCgroupLayout();
  } catch {
    return null;
  }
})();

/** Why tests of `what`, which need the system's hierarchy to be cgroup v2, skip here (said once on
 * the console), or false where they run. */
export function skipUnlessCgroupV2(what: string): string | false {
  const reason =
    skip ||
    (systemCgroupLayout?.version !== 'v2' &&
      `this host's cgroup hierarchy is ${systemCgroupLayout?.version ?? 'unusable'}, not v2: ${what} run where v2 is the system's hierarchy (test/vm/cgroup-v2.test.ts runs this file in a cgroup v2 VM)`);
  if (reason && !skip) console.log(`SKIP ${what}: ${reason}`);
  return reason;
}

export interface Fixture {
  sandbox: Sandbox;
  rootDir: string;
  /** A fresh empty work dir (removed with the fixture). */
  workDir(): string;
  run(argv: string[], extra?: Partial<Omit<RunSpec, 'limits'>> & { limits?: Partial<Limits> }): Promise<RunResult>;
}

/** Registers before/after hooks that create and close one sandbox for the file. */
export function useFixture(sandboxOptions: SandboxOptions = {}): Fixture {
  let scratch = '';
  let counter = 0;
  const fixture = {} as Fixture;
  before(() => {
    if (skip) return;
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-sandbox-test-'));
    fixture.sandbox = createSandbox(sandboxOptions);
    fixture.rootDir = busyboxRoot();
    fixture.workDir = () => {
      const dir = path.join(scratch, `w${counter++}`);
      fs.mkdirSync(dir);
      return dir;
    };
    fixture.run = (argv, extra = {}) =>
      fixture.sandbox.run({
        rootDir: fixture.rootDir,
        workDirHostPath: extra.workDirHostPath ?? fixture.workDir(),
        ...extra,
        argv,
        limits: { ...DEFAULT_LIMITS, ...extra.limits },
      });
  });
  after(async () => {
    if (skip) return;
    await fixture.sandbox.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });
  return fixture;
}

export function text(buffer: Buffer): string {
  return buffer.toString('utf8');
}
