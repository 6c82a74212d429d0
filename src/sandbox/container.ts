// One prepared container: its native init (namespaces, mounts, cgroup joined, waiting for "go")
// and its run cgroup. `start` runs the program once; `destroy` ends init and removes the cgroup
// (on its own UNDESTROYED_TEARDOWN_MS after the result when the owner does not).
import os from 'node:os';
import { msToWholeSecondsCeil, nsToMs } from '../units.js';
import type { RunCgroup } from './cgroups/index.js';
import { sandboxErrorFromFailure, toSandboxError, unrecordedEndError } from './errors.js';
import { native } from './native.js';
import type { NativeContainer, NativeExit } from './native.js';
import type { CheckedContainerSpec } from './spec.js';
import { checkStartSpec } from './spec.js';
import { containerTcpRmem, somaxconnFor } from './tcp-memory.js';
import type { Limits, PreparedContainer, RunResult, StartSpec } from './types.js';
import { SandboxError, SandboxSpecError } from './types.js';
import { decideVerdict, signalName } from './verdict.js';

/** How often init checks the cgroup's CPU time (against the limit and backgroundAfterCpuMs) and
 * the output size while the program runs. */
const POLL_INTERVAL_MS = 5;

/** How long after a run's result a container that its owner has not destroyed ends on its own
 * (init told to exit, which tears its namespaces down, then the cgroup removed). The owner
 * normally ends it sooner, when that work competes least with other jobs: the pool in its
 * upkeep, which waits while the image's jobs run (src/pool/keyed-pool.ts); the sandbox's one-shot
 * run() RUN_TEARDOWN_DELAY_MS after the result. This only bounds how long a forgotten one lives. */
const UNDESTROYED_TEARDOWN_MS = 1000;

export interface ContainerIdentity {
  uid: number;
  gid: number;
  /** The uid is the container's alone (ContainerSpec.uid given: the pool's leased uid), not the
   * sandbox's default, which runs side by side share: the program's RLIMIT_NPROC, a count over
   * every process and thread of its uid on the machine, is then its pids limit. */
  uidOfItsOwn: boolean;
}

/** A connected or streaming run's pipe ends (native createPipe's), the program's stdin and stdout
 * (and a streaming run's stderr) in place of the memfds; the container takes copies, the caller
 * closes these. */
export interface ConnectedStdio {
  stdinFd: number;
  stdoutFd: number;
  stderrFd?: number;
  /** The three are one terminal's peer (a streaming run with a terminal): the program's
   * controlling terminal. */
  terminal?: boolean;
}

/** What a streaming run's caller read from the stdout and stderr pipes and kept (init measures
 * and reads only memfds): the result's output in place of the native exit's. */
export interface PipedOutput {
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

type ContainerState = 'ready' | 'started' | 'finished';

export function emptyResult(): Omit<RunResult, 'verdict'> {
  return {
    exitCode: null,
    signal: null,
    signalName: null,
    stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0),
    stdoutTruncated: false,
    stderrTruncated: false,
    metrics: { cpuTimeMs: 0, wallTimeMs: 0, peakMemoryBytes: 0 },
  };
}

export function internalErrorResult(error: SandboxError): RunResult {
  return {
    verdict: 'internal_error',
    ...emptyResult(),
    error: { step: error.step, errno: error.errno, code: error.code, message: error.message },
  };
}

export class Container implements PreparedContainer {
  private state: ContainerState = 'ready';
  /** init has been reaped: a ready container can no longer run anything. */
  private initEnded = false;
  private destroyed: Promise<void> | null = null;
  private undestroyedTimer: NodeJS.Timeout | undefined;
  /** The run's "exit" has arrived: every process of it is dead. */
  private runEnded = false;
  /** Who asked first to kill the run: spec.signal, or a streaming run's caller for its output
   * (killForOutput). Both reach init as the same cancel word, which alone would say `cancelled`. */
  private killedBy: 'signal' | 'output' | undefined;

  private constructor(
    readonly id: string,
    private readonly spec: CheckedContainerSpec,
    private readonly identity: ContainerIdentity,
    private readonly handle: NativeContainer,
    private readonly exited: Promise<NativeExit>,
    /** init reaped, after `exited`: its namespaces are torn down. */
    private readonly initGone: Promise<void>,
    private readonly cgroup: RunCgroup,
    private readonly onGone: (c: Container) => void,
  ) {
    void initGone.then(() => (this.initEnded = true));
  }

  get usable(): boolean {
    return this.state === 'ready' && !this.initEnded;
  }

  /** Clones init and waits until it is ready; throws SandboxError (the cgroup is removed). */
  static async prepare(
    id: string,
    spec: CheckedContainerSpec,
    identity: ContainerIdentity,
    cgroup: RunCgroup,
    onGone: (c: Container) => void,
    connected?: ConnectedStdio,
  ): Promise<Container> {
    let onReady!: () => void;
    let onExit!: (exit: NativeExit) => void;
    let onInitGone!: () => void;
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    const exited = new Promise<NativeExit>((resolve) => (onExit = resolve));
    const initGone = new Promise<void>((resolve) => (onInitGone = resolve));
    let handle: NativeContainer;
    try {
      handle = native.createContainer(
        {
          rootDir: spec.rootDir,
          workDirHostPath: spec.workDirHostPath,
          workDir: spec.workDir,
          hostname: spec.hostname,
          tmpBytes: spec.tmpBytes,
          cgroupJoinPaths: cgroup.joinPaths,
          cgroupCloneIntoPath: cgroup.cloneIntoPath,
          cpuUsagePath: cgroup.cpuUsagePath,
          memorySamplePath: cgroup.memorySamplePath,
          cpuUsageScaleNs: cgroup.cpuUsageScaleNs,
          cpuWeightPath: cgroup.cpuWeightPath,
          backgroundCpuWeight: cgroup.backgroundCpuWeight,
          tcpRmem: containerTcpRmem(),
          ...(connected ? { stdinPipeFd: connected.stdinFd, stdoutPipeFd: connected.stdoutFd } : {}),
          ...(connected?.stderrFd !== undefined ? { stderrPipeFd: connected.stderrFd } : {}),
          ...(spec.ignoreSigpipe ? { ignoreSigpipe: true } : {}),
          ...(connected?.terminal ? { controllingTerminal: true } : {}),
        },
        (kind, exit) => {
          if (kind === 'ready') onReady();
          else if (kind === 'exit') onExit(exit as NativeExit);
          else onInitGone();
        },
      );
    } catch (error) {
      await cgroup.destroy();
      throw toSandboxError(error);
    }
    let isReady = false;
    // Settles only if init ends before "ready". Once ready, the run's own exit must not build an
    // error here: an Error captures a stack (tens of µs), and this handler runs on every exit,
    // just before the start() that waits for it.
    const setupFailure = exited.then((exit) => {
      if (isReady) return;
      throw sandboxErrorFromFailure(exit.failure ?? { step: 'init_died', errno: os.constants.errno.ESRCH });
    });
    try {
      await Promise.race([ready.then(() => (isReady = true)), setupFailure]);
    } catch (error) {
      await cgroup.destroy();
      throw error;
    }
    setupFailure.catch(() => {}); // from here on, `exited` is handled by start/destroy
    handle.unref(); // an idle prepared container does not keep Node alive
    handle.armRunEndWatch();
    const container = new Container(id, spec, identity, handle, exited, initGone, cgroup, onGone);
    try {
      // The program's child is in the cgroup and asleep until "go": baselines taken now hold
      // for the run, and their files stay open for reading it.
      cgroup.startAccounting();
    } catch (error) {
      await container.destroy().catch(() => {});
      throw toSandboxError(error);
    }
    return container;
  }

  /** A streaming run's output pipes are read by its caller, not measured by init: the caller kills
   * the run here once they pass limits.outputBytes, and the verdict is then `output_limit` (also
   * when the output that passed it is found after the program's own exit). */
  killForOutput(): void {
    if (this.state !== 'started' || this.killedBy !== undefined) return;
    this.killedBy = 'output';
    if (!this.runEnded) this.handle.cancel();
  }

  /** `readPipes`: a streaming run's; called once every process of the run is dead, it resolves
   * once the caller has read the output pipes to their end. */
  async start(spec: StartSpec, readPipes?: () => Promise<PipedOutput>): Promise<RunResult> {
    if (this.state !== 'ready') throw new SandboxSpecError('container', `cannot start a container that is ${this.state}`);
    const program = checkStartSpec(spec, this.spec.workDir);
    this.state = 'started';
    if (spec.signal?.aborted) {
      await this.finish();
      return { verdict: 'cancelled', ...emptyResult() };
    }
    const { limits } = program;
    try {
      this.cgroup.applyLimits(limits);
      this.handle.ref();
      this.handle.start({
        argv: program.argv,
        env: program.env,
        searchPath: program.searchPath,
        cwd: program.cwd,
        stdin: program.stdin,
        uid: this.identity.uid,
        gid: this.identity.gid,
        cpuTimeMs: limits.cpuTimeMs,
        wallTimeMs: limits.wallTimeMs,
        outputBytes: limits.outputBytes,
        fileSizeBytes: limits.fileSizeBytes,
        openFiles: limits.openFiles,
        stackBytes: limits.stackBytes,
        tmpBytes: limits.tmpBytes,
        pids: this.identity.uidOfItsOwn ? limits.pids : 0,
        // A backstop one second above the limit: the kernel charges RLIMIT_CPU by scheduler ticks,
        // which over-count a busy program under load, so at the limit itself it would fire well
        // before the cgroup's exact CPU time reaches it. It can still fire first (SIGXCPU at
        // 14.7 s of a 15 s limit was seen): the verdict is cpu_time_limit either way.
        cpuRlimitSeconds: msToWholeSecondsCeil(limits.cpuTimeMs) + 1,
        pollIntervalMs: POLL_INTERVAL_MS,
        backgroundAfterCpuMs: program.backgroundAfterCpuMs,
        somaxconn: somaxconnFor(limits),
        stderrToStdout: program.stderrToStdout,
        accountingFds: this.cgroup.accountingFds(),
      });
    } catch (error) {
      // Torn down first: toSandboxError rethrows what is no sandbox failure, and the container
      // (init, cgroup) must not outlive that either.
      await this.finish();
      return internalErrorResult(toSandboxError(error));
    }
    const cancel = (): void => {
      if (!this.runEnded) this.killedBy ??= 'signal';
      this.handle.cancel();
    };
    spec.signal?.addEventListener('abort', cancel, { once: true });
    try {
      const exit = await this.exited;
      this.runEnded = true;
      // The pipes may still hold the last chunks, one of which may pass the output limit: the
      // verdict waits for them.
      const piped = readPipes ? await readPipes() : undefined;
      return this.result(exit, limits, piped);
    } finally {
      spec.signal?.removeEventListener('abort', cancel);
      // Every process of the run is dead (init killed what was left before "done") and init
      // waits for finish()'s word to exit: ending it, which tears its namespaces down, and
      // removing the cgroup is kernel work that should not compete with the result's way out or
      // with the jobs that follow, so the owner chooses when (destroy()). Unref'd: a forgotten
      // container does not keep Node alive (nor does its init, as before the run); Sandbox.close()
      // ends it.
      this.handle.unref();
      this.undestroyedTimer = setTimeout(() => this.finish().catch(() => {}), UNDESTROYED_TEARDOWN_MS);
      this.undestroyedTimer.unref();
    }
  }

  private result(exit: NativeExit, limits: Limits, piped?: PipedOutput): RunResult {
    if (exit.failure) return internalErrorResult(sandboxErrorFromFailure(exit.failure));
    let usage;
    try {
      usage = exit.accountingTexts ? this.cgroup.usageFrom(exit.accountingTexts, exit.sampledPeakMemoryBytes) : this.cgroup.readUsage();
    } catch (error) {
      return internalErrorResult(toSandboxError(error));
    }
    const exitCode = exit.status === 'exited' ? exit.statusValue : null;
    const signal = exit.status === 'signaled' ? exit.statusValue : null;
    const cpuTimeMs = nsToMs(usage.cpuTimeNs);
    const verdict = decideVerdict({
      setupFailed: false,
      killedForCancel: exit.killedForCancel && this.killedBy !== 'output',
      killedForCpu: exit.killedForCpu,
      killedForWall: exit.killedForWall,
      killedForOutput: exit.killedForOutput || this.killedBy === 'output',
      oomKills: usage.oomKills,
      cpuTimeMs,
      exitCode,
      signal,
      stdoutBytes: exit.stdoutBytes,
      stderrBytes: exit.stderrBytes,
      limits,
    });
    // Not a failed step (that returned above): no status and no signal, which is no result.
    if (verdict === 'internal_error') return internalErrorResult(unrecordedEndError());
    return {
      verdict,
      exitCode,
      signal,
      signalName: signalName(signal),
      ...(piped ?? {
        stdout: exit.stdout,
        stderr: exit.stderr,
        stdoutTruncated: exit.stdoutBytes > exit.stdout.length,
        stderrTruncated: exit.stderrBytes > exit.stderr.length,
      }),
      metrics: { cpuTimeMs, wallTimeMs: nsToMs(exit.wallTimeNs), peakMemoryBytes: usage.peakMemoryBytes },
    };
  }

  /** Waits for init to be reaped (ending it if needed) and removes the cgroup; idempotent. */
  private finish(): Promise<void> {
    this.destroyed ??= (async () => {
      clearTimeout(this.undestroyedTimer);
      this.handle.ref(); // keep Node alive until init is reaped
      this.handle.cancel();
      await this.initGone;
      this.state = 'finished';
      await this.cgroup.destroy();
      // Only once the cgroup is gone: a container whose removal failed stays with the sandbox,
      // whose close() then reports the failure.
      this.onGone(this);
    })();
    return this.destroyed;
  }

  destroy(): Promise<void> {
    return this.finish();
  }
}
