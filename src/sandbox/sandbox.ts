// A sandbox instance: owns `<cgroupParent>/<instanceId>` in every cgroup hierarchy and proves it is
// alive by holding an flock on /run/cellblock/<instanceId>.lock, so that another instance's
// cleanupStale removes only the leftovers of dead instances.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { holdLockFile, isLockFileHeld } from '../lock-file.js';
import type { CgroupBackend } from './cgroups/index.js';
import { probeCgroupParents } from './cgroups/cgroupfs.js';
import { createCgroupBackend } from './cgroups/index.js';
import { Container, emptyResult, internalErrorResult, type ConnectedStdio } from './container.js';
import { toSandboxError } from './errors.js';
import { native } from './native.js';
import { keepProgramsOomKillable } from './oom-score.js';
import { checkContainerSpec, checkStartSpec, checkTerminalSize, DEFAULT_WORK_DIR, isSandboxId } from './spec.js';
import { closeQuietly, StreamingPipes, StreamingTerminal, type StreamingStdio } from './streaming.js';
import type {
  ContainerSpec,
  PreparedContainer,
  RunResult,
  RunSpec,
  Sandbox,
  SandboxCgroups,
  SandboxOptions,
  StartSpec,
  StreamingIo,
  StreamingRun,
  TerminalSize,
} from './types.js';
import { SandboxError, SandboxSpecError } from './types.js';

export const SANDBOX_UID = 60000;
export const SANDBOX_GID = 60000;
const DEFAULT_LOCK_DIR = '/run/cellblock';
const INSTANCE_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** How long after a one-shot run()'s result its container is destroyed. Init's exit tears the
 * namespaces down (an expedited RCU grace period for the mount namespace, an IPI to every core;
 * the network namespace's cleanup in a kworker, with more of them) and the cgroup is removed
 * after it: on a small machine that work competed with the result's way out of the worker
 * (worker → Redis → API → client, ~2-3 ms when idle). Quick sporadic load tests, this delay vs
 * none, four alternating pairs: finished → HTTP 0.1-0.5 ms shorter in each of the eight scenario
 * figures. (A pool's containers are destroyed by the pool's upkeep instead.) */
const RUN_TEARDOWN_DELAY_MS = 10;

function containerSpecOf(spec: RunSpec): ContainerSpec {
  return {
    rootDir: spec.rootDir,
    workDirHostPath: spec.workDirHostPath,
    workDir: spec.workDir,
    hostname: spec.hostname,
    tmpBytes: spec.limits?.tmpBytes,
    limits: spec.limits,
    ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
    ...(spec.ignoreSigpipe !== undefined ? { ignoreSigpipe: spec.ignoreSigpipe } : {}),
  };
}

function startSpecOf(spec: RunSpec): StartSpec {
  return {
    argv: spec.argv,
    env: spec.env,
    cwd: spec.cwd,
    stdin: spec.stdin,
    limits: spec.limits,
    signal: spec.signal,
    backgroundAfterCpuMs: spec.backgroundAfterCpuMs,
    stderrToStdout: spec.stderrToStdout,
  };
}

function lockPath(lockDir: string, instanceId: string): string {
  return path.join(lockDir, `${instanceId}.lock`);
}

class SandboxInstance implements Sandbox {
  readonly cgroups: SandboxCgroups;
  private readonly containers = new Set<Container>();
  private nextContainer = 0;
  private closed = false;

  constructor(
    readonly instanceId: string,
    private readonly backend: CgroupBackend,
    private readonly lockDir: string,
    private readonly lockFd: number,
    private readonly uid: number,
    private readonly gid: number,
    oomScoreAdjRaisedFrom: number | undefined,
  ) {
    this.cgroups = {
      version: backend.version,
      parents: backend.parentPaths,
      peakMemorySource: backend.peakMemorySource,
      ...(backend.hostProcessesMovedTo ? { hostProcessesMovedTo: backend.hostProcessesMovedTo } : {}),
      ...(backend.delegation ? { delegation: backend.delegation } : {}),
      ...(oomScoreAdjRaisedFrom !== undefined ? { oomScoreAdjRaisedFrom } : {}),
    };
  }

  prepare(spec: ContainerSpec): Promise<PreparedContainer> {
    return this.prepareContainer(spec);
  }

  private async prepareContainer(spec: ContainerSpec, connected?: ConnectedStdio): Promise<Container> {
    if (this.closed) throw new SandboxSpecError('sandbox', 'is closed');
    const checked = checkContainerSpec(spec);
    const id = `c${(this.nextContainer++).toString(36)}`;
    // The program runs as the sandbox user; its work dir is the one place it owns.
    const uid = checked.uid ?? this.uid;
    fs.chownSync(checked.workDirHostPath, uid, this.gid);
    let cgroup;
    try {
      cgroup = this.backend.createRunCgroup(this.instanceId, id);
    } catch (error) {
      throw toSandboxError(error);
    }
    if (checked.limits) {
      try {
        cgroup.applyLimits(checked.limits);
      } catch (error) {
        await cgroup.destroy();
        throw toSandboxError(error);
      }
    }
    const container = await Container.prepare(
      id,
      checked,
      { uid, gid: this.gid, uidOfItsOwn: checked.uid !== undefined },
      cgroup,
      (c) => this.containers.delete(c),
      connected,
    );
    this.containers.add(container);
    return container;
  }

  async run(spec: RunSpec): Promise<RunResult> {
    let container: PreparedContainer;
    try {
      container = await this.prepare(containerSpecOf(spec));
    } catch (error) {
      if (error instanceof SandboxError) return internalErrorResult(error);
      throw error;
    }
    try {
      return await container.start(startSpecOf(spec));
    } finally {
      setTimeout(() => container.destroy().catch(() => {}), RUN_TEARDOWN_DELAY_MS);
    }
  }

  async runConnected(first: RunSpec, second: RunSpec): Promise<[RunResult, RunResult]> {
    for (const [which, spec] of [['first', first], ['second', second]] as const) {
      if (spec.stdin !== undefined && spec.stdin.length > 0) {
        throw new SandboxSpecError(`${which}.stdin`, "must be empty: a connected run reads its peer's stdout");
      }
      if (spec.stderrToStdout === true) {
        throw new SandboxSpecError(`${which}.stderrToStdout`, "must be false: a connected run's stdout is its peer's stdin");
      }
      // Here as well as at start: a spec refused there would leave its peer started alone.
      checkStartSpec(startSpecOf(spec), spec.workDir ?? DEFAULT_WORK_DIR);
    }
    const ends: number[] = [];
    let containers: PreparedContainer[] = [];
    try {
      const [firstToSecondRead, firstToSecondWrite] = native.createPipe();
      ends.push(firstToSecondRead, firstToSecondWrite);
      const [secondToFirstRead, secondToFirstWrite] = native.createPipe();
      ends.push(secondToFirstRead, secondToFirstWrite);
      // Both at once: neither waits for the other's clone and mounts.
      const prepared = await Promise.allSettled([
        this.prepareContainer(containerSpecOf(first), { stdinFd: secondToFirstRead, stdoutFd: firstToSecondWrite }),
        this.prepareContainer(containerSpecOf(second), { stdinFd: firstToSecondRead, stdoutFd: secondToFirstWrite }),
      ]);
      containers = prepared.flatMap((p) => (p.status === 'fulfilled' ? [p.value] : []));
      const failed = prepared.find((p): p is PromiseRejectedResult => p.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (error) {
      await Promise.allSettled(containers.map((c) => c.destroy()));
      const failure = toSandboxError(error);
      return [internalErrorResult(failure), internalErrorResult(failure)];
    } finally {
      // Each container holds copies of its two ends: these would keep a peer from seeing end of
      // file once a program is gone.
      for (const fd of ends) closeQuietly(fd);
    }
    const [firstContainer, secondContainer] = containers as [PreparedContainer, PreparedContainer];
    try {
      // Both "go"s in the same turn of the event loop: neither program waits for the other's start.
      return await Promise.all([firstContainer.start(startSpecOf(first)), secondContainer.start(startSpecOf(second))]);
    } finally {
      setTimeout(() => {
        for (const container of containers) container.destroy().catch(() => {});
      }, RUN_TEARDOWN_DELAY_MS);
    }
  }

  runStreaming(spec: RunSpec, io: StreamingIo, terminal?: TerminalSize): StreamingRun {
    if (this.closed) throw new SandboxSpecError('sandbox', 'is closed');
    if (spec.stdin !== undefined && spec.stdin.length > 0) {
      throw new SandboxSpecError('stdin', "must be empty: a streaming run's stdin is what the caller writes");
    }
    if (spec.stderrToStdout === true) {
      throw new SandboxSpecError('stderrToStdout', "must be false: a streaming run's stderr is a stream of its own");
    }
    // Here, at once, what prepare and start would refuse later: `result` then fails only as a run.
    checkContainerSpec(containerSpecOf(spec));
    checkStartSpec(startSpecOf(spec), spec.workDir ?? DEFAULT_WORK_DIR);
    if (terminal !== undefined) checkTerminalSize(terminal);
    let stdio: StreamingStdio;
    try {
      stdio = terminal ? StreamingTerminal.open(io, spec.limits.outputBytes, terminal) : StreamingPipes.open(io, spec.limits.outputBytes);
    } catch (error) {
      const result = Promise.resolve(internalErrorResult(toSandboxError(error)));
      return { write: () => {}, end: () => {}, resize: (size) => checkTerminalSize(size), result };
    }
    return {
      write: (data) => stdio.write(data),
      end: () => stdio.end(),
      resize: (size) => {
        checkTerminalSize(size);
        stdio.resize(size);
      },
      result: this.streamingResult(spec, stdio),
    };
  }

  private async streamingResult(spec: RunSpec, stdio: StreamingStdio): Promise<RunResult> {
    let container: Container;
    try {
      container = await this.prepareContainer(containerSpecOf(spec), stdio.childEnds);
    } catch (error) {
      stdio.destroy();
      if (error instanceof SandboxError) return internalErrorResult(error);
      throw error;
    } finally {
      stdio.closeChildEnds();
    }
    try {
      // A terminal echoes what is typed at once: its output may have passed the limit before the
      // program could run, which is then not started.
      if (stdio.outputLimitReached) return { verdict: 'output_limit', ...emptyResult(), ...(await stdio.readToEnd()) };
      stdio.killForOutput = () => container.killForOutput();
      return await container.start(startSpecOf(spec), () => stdio.readToEnd());
    } finally {
      // Also where the program did not run (the limit above, cancelled before it, a failed
      // start): its output would reach end of file only with the container's end.
      stdio.destroy();
      setTimeout(() => container.destroy().catch(() => {}), RUN_TEARDOWN_DELAY_MS);
    }
  }

  async cleanupStale(): Promise<string[]> {
    const removed: string[] = [];
    for (const id of this.backend.listInstances()) {
      if (id === this.instanceId) continue;
      const lock = lockPath(this.lockDir, id);
      // No lock file: not an instance of ours (or someone else's subtree); never touch it.
      if (!fs.existsSync(lock)) continue;
      if (isLockFileHeld(lock)) continue;
      await this.backend.removeInstance(id);
      fs.rmSync(lock, { force: true });
      removed.push(id);
    }
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const destroyed = await Promise.allSettled([...this.containers].map((c) => c.destroy()));
    try {
      await this.backend.removeInstance(this.instanceId);
      this.backend.releaseParent();
    } finally {
      fs.rmSync(lockPath(this.lockDir, this.instanceId), { force: true });
      fs.closeSync(this.lockFd);
    }
    // The instance's subtree is gone all the same; a container's own failure is still reported.
    const failure = destroyed.find((d): d is PromiseRejectedResult => d.status === 'rejected');
    if (failure) throw toSandboxError(failure.reason);
  }
}

function cgroupBackendFor(options: SandboxOptions): CgroupBackend {
  return createCgroupBackend(options.cgroupParent ?? 'cellblock', {
    base: options.cgroupBase ?? 'root',
    samplePeakMemory: options.samplePeakMemory ?? false,
  });
}

/** Throws the SandboxError that createSandbox with these options would throw for its cgroups
 * where reading can tell (no usable hierarchy; a delegated base without the controllers), then
 * where only trying can (a read-only cgroup mount): makes a cgroup under each parent and removes
 * it (probeCgroupParents), moving and enabling nothing: the preflight of a process that starts
 * workers, which would otherwise each fail at their start. */
export function checkSandboxCgroups(options: Pick<SandboxOptions, 'cgroupParent' | 'cgroupBase'> = {}): void {
  try {
    const backend = cgroupBackendFor(options);
    backend.checkUsable();
    // No instance's name: INSTANCE_ID has no ':'.
    probeCgroupParents(backend.parentPaths, `preflight:${newInstanceId()}`);
  } catch (error) {
    throw toSandboxError(error);
  }
}

/** An instance id of this process's own, unlike any other's: its pid, and random bytes beside it
 * (a pid is reused). */
function newInstanceId(): string {
  return `${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
}

/** Detects the cgroup version, takes the instance's lock and creates its cgroup subtree. */
export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const instanceId = options.instanceId ?? newInstanceId();
  if (!INSTANCE_ID.test(instanceId)) throw new SandboxSpecError('instanceId', 'must be 1-64 of [A-Za-z0-9_.-]');
  const uid = options.uid ?? SANDBOX_UID;
  const gid = options.gid ?? SANDBOX_GID;
  for (const [field, value] of [['uid', uid], ['gid', gid]] as const) {
    if (!isSandboxId(value)) {
      throw new SandboxSpecError(field, 'must be a non-root id');
    }
  }
  // Before any container: each init and program inherits the value at its clone.
  const oomScoreAdjRaisedFrom = keepProgramsOomKillable();
  const lockDir = options.lockDir ?? DEFAULT_LOCK_DIR;
  const backend = cgroupBackendFor(options);
  fs.mkdirSync(lockDir, { recursive: true, mode: 0o700 });
  let lockFd: number;
  try {
    lockFd = holdLockFile(lockPath(lockDir, instanceId));
  } catch {
    throw new SandboxSpecError('instanceId', `${instanceId} is in use by a live process`);
  }
  try {
    backend.createInstance(instanceId);
  } catch (error) {
    fs.closeSync(lockFd);
    fs.rmSync(lockPath(lockDir, instanceId), { force: true });
    throw toSandboxError(error);
  }
  return new SandboxInstance(instanceId, backend, lockDir, lockFd, uid, gid, oomScoreAdjRaisedFrom);
}
