// The sandbox engine's public contract. Everything above the engine (pool, executor, queue,
// API) speaks only these types. Verdicts and metrics are defined once, in
// docs/theory-of-operation.md; the comments here point there rather than restate it.

import type { CgroupDelegation } from './cgroups/backend.js';

/** Hard limits for one run. Every field is required at the engine: callers fill defaults. */
export interface Limits {
  /** CPU time (user+sys) of all processes of the run, from the cgroup. */
  cpuTimeMs: number;
  /** Wall-clock time from exec to the program's exit. */
  wallTimeMs: number;
  /** cgroup memory limit (no swap); page cache and tmpfs pages the run creates count too. It also
   * bounds the run's TCP memory (v1: a TCP limit of the same size), and with pids and openFiles
   * sets its network namespace's somaxconn (docs/theory-of-operation.md, "TCP memory"). */
  memoryBytes: number;
  /** Tasks (processes + threads) the program may have at once, not counting the sandbox's init. */
  pids: number;
  /** stdout + stderr bytes kept; more than this is the `output_limit` verdict. */
  outputBytes: number;
  /** RLIMIT_FSIZE: the largest file the program may write. stdout and stderr are files too (a
   * run's memfds; a pipe is not): where this is at most outputBytes it bounds each of them, whose
   * fileSizeBytes bytes are kept, and a stream written past them is `output_limit` (RLIMIT_FSIZE
   * is then one byte more, so that the excess shows: a file there may be one byte over). */
  fileSizeBytes: number;
  /** RLIMIT_NOFILE. */
  openFiles: number;
  /** RLIMIT_STACK. */
  stackBytes: number;
  /** Size of the fresh tmpfs mounted at /tmp. */
  tmpBytes: number;
  /** CPU bandwidth in cores (cgroup quota/period); 1 means one full core. */
  cpuCores: number;
}

export interface RunSpec {
  /** Host path of the container's `/`: prepared by the caller (an overlay from the pool, or a
   * plain directory in tests). Mounted read-only inside the container. It must contain the mount
   * points /proc, /dev, /tmp and the work dir. */
  rootDir: string;
  /** Host path of a directory bound read-write at `workDir` inside the container. */
  workDirHostPath: string;
  /** Path inside the container where the work dir appears; also the default cwd. Default /box. */
  workDir?: string;
  /** argv[0] is resolved inside the container: give an absolute path, or rely on PATH in env. */
  argv: string[];
  env?: Record<string, string>;
  /** Inside the container; default `workDir`. */
  cwd?: string;
  stdin?: Uint8Array | string;
  limits: Limits;
  /** Hostname inside the container's UTS namespace. Default "cellblock". */
  hostname?: string;
  /** As ContainerSpec.uid. */
  uid?: number;
  /** As StartSpec.backgroundAfterCpuMs. */
  backgroundAfterCpuMs?: number;
  /** As StartSpec.stderrToStdout. */
  stderrToStdout?: boolean;
  /** As ContainerSpec.ignoreSigpipe. */
  ignoreSigpipe?: boolean;
}

/** See docs/theory-of-operation.md, "Verdicts". Exactly one per run. */
export type Verdict =
  | 'ok'
  | 'runtime_error'
  | 'signaled'
  | 'cpu_time_limit'
  | 'wall_time_limit'
  | 'memory_limit'
  | 'output_limit'
  | 'cancelled'
  | 'internal_error';

/** See docs/theory-of-operation.md, "Metrics". */
export interface RunMetrics {
  cpuTimeMs: number;
  wallTimeMs: number;
  peakMemoryBytes: number;
}

export interface RunResult {
  verdict: Verdict;
  /** Exit status when the program exited by itself; null when it was killed by a signal. */
  exitCode: number | null;
  /** Signal number that ended the program, or null. */
  signal: number | null;
  /** Signal name (e.g. "SIGSEGV"), or null. */
  signalName: string | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  metrics: RunMetrics;
  /** Present only with verdict `internal_error`. */
  error?: { step: string; errno: number; code: string; message: string };
}

/** The step of the setup recipe that failed, as named by the native recipe. */
export class SandboxError extends Error {
  override readonly name = 'SandboxError';
  constructor(
    readonly step: string,
    readonly errno: number,
    readonly code: string,
    message?: string,
  ) {
    super(message ?? `sandbox setup failed at ${step}: ${code} (errno ${errno})`);
  }
}

// ---- Added by the engine (issue 2): cancellation, the prepare/start split, the instance.

export interface RunSpec {
  /** Aborting kills the run; its verdict is then `cancelled`. */
  signal?: AbortSignal;
}

/** What `prepare` needs: the container's filesystem and identity, everything but the program. */
export interface ContainerSpec {
  rootDir: string;
  workDirHostPath: string;
  /** Default /box. */
  workDir?: string;
  /** Default "cellblock". */
  hostname?: string;
  /** Size of /tmp when prepared; `start` resizes it when its limits say otherwise. Default
   * `limits.tmpBytes`, else 64 MiB. */
  tmpBytes?: number;
  /** The limits `start` is expected to get (e.g. the runtime's defaults): applied to the cgroup
   * while preparing, so that `start` writes only those that differ. */
  limits?: Limits;
  /** The uid the program runs as (and owns its work dir); default the sandbox's. A uid of its own
   * per live container keeps apart what the kernel limits per user, not per namespace: inotify
   * instances, pending signals, message queue bytes, pipe buffers (src/pool/uid-leases.ts). Given,
   * it is taken for the container's alone, and the program's RLIMIT_NPROC (which the kernel counts
   * over every process and thread of the uid on the machine) is set to `limits.pids`; on the
   * sandbox's default, which runs side by side share, the worker's is inherited. */
  uid?: number;
  /** The program starts with SIGPIPE ignored (every other signal at its default): a write to a
   * pipe whose reader is gone fails with EPIPE instead of killing it. For an interactor in a
   * connected run (Sandbox.runConnected), which should judge a program that ended early rather
   * than die of it. Default false. */
  ignoreSigpipe?: boolean;
}

/** What `start` needs: the program and its limits. */
export interface StartSpec {
  argv: string[];
  env?: Record<string, string>;
  /** Default: the container's work dir. */
  cwd?: string;
  stdin?: Uint8Array | string;
  limits: Limits;
  signal?: AbortSignal;
  /** Once the run has used this much CPU time, its cgroup's CPU weight drops to the background
   * weight (docs/theory-of-operation.md, "Long runs and the background"): a short run competing
   * for a core with a long one gets nearly all of it. CPU time, not wall time, so that a run
   * slowed down by contention (a compile on busy cores) is not taken for a long one. Absent or
   * 0: never. */
  backgroundAfterCpuMs?: number;
  /** The program's stderr is its stdout: one stream, interleaved as written (isolate's
   * --stderr-to-stdout); the result's stderr is then empty. Default false. */
  stderrToStdout?: boolean;
}

/** A container whose namespaces, cgroup, mounts, pivot_root, `lo` and hostname are done; its init
 * waits for `start`. Single use: one `start`, then `destroy`; or `destroy` alone. */
export interface PreparedContainer {
  readonly id: string;
  /** Runs the program; after the result, init waits (its namespaces up, the cgroup kept) for
   * `destroy`, which the owner calls when that teardown disturbs other work least. A container
   * not destroyed within a second of its result ends on its own. */
  start(spec: StartSpec): Promise<RunResult>;
  /** Ends the container (killing a run still going) and removes its cgroup; idempotent. */
  destroy(): Promise<void>;
  /** Whether `start` can still run a program here: false once started or destroyed, and once its
   * init has ended while it waited (killed from outside: an OOM kill, a kill by pid), when `start`
   * could only answer internal_error. */
  readonly usable: boolean;
}

/** Where cellblock's cgroups go in each hierarchy: under its root (the default; what Docker's
 * cgroupfs driver does), or under the cgroup this process was started in, which its manager
 * delegated to it (systemd's Delegate=yes; a container runtime's scope), so that the manager's
 * limits (MemoryMax=, TasksMax=, a container's) and its stop cover the sandboxes too. */
export const CGROUP_BASES = ['root', 'delegated'] as const;
export type CgroupBase = (typeof CGROUP_BASES)[number];

export interface SandboxOptions {
  /** Names this instance's cgroup subtree and lock file. Default: pid + random suffix. */
  instanceId?: string;
  /** Parent cgroup, relative to each hierarchy's base. Default "cellblock". */
  cgroupParent?: string;
  /** Where the parent goes: under each hierarchy's root (default), or under the cgroup this
   * process was started in, delegated to it by its manager (systemd's Delegate=yes), so that
   * the manager's limits and its stop cover the sandboxes. */
  cgroupBase?: CgroupBase;
  /** The sandbox user. Default 60000/60000. */
  uid?: number;
  gid?: number;
  /** Directory of instance lock files. Default /run/cellblock. */
  lockDir?: string;
  /** cgroup v2: measure peak memory as on a kernel without memory.peak (before Linux 5.19), by
   * sampling memory.current, even where memory.peak exists. For tests of that way. */
  samplePeakMemory?: boolean;
}

/** The cgroups an engine instance uses, for its owner to log at start-up. */
export interface SandboxCgroups {
  version: 'v1' | 'v2';
  /** Our parent cgroup in each hierarchy (one on v2). */
  parents: string[];
  /** Where a run's peak memory comes from: v1 memory.max_usage_in_bytes, v2 memory.peak, or on
   * a v2 kernel before 5.19 memory.current sampled at each of init's polls (every 5 ms), which
   * can miss a spike shorter than that. */
  peakMemorySource: string;
  /** v2 in a container with a cgroup namespace of its own, or under a delegated base: the leaf
   * under our parent that the base's processes (this one included) were moved to, so that the
   * controllers could be enabled for children. Absent when nothing was moved. */
  hostProcessesMovedTo?: string;
  /** Under a delegated base (CgroupBase `delegated`) below the hierarchy's root (v1: some
   * hierarchy's): the base, and the mark its manager set on it (systemd 251+: trusted.delegate),
   * absent when none was found; v1: each controller's parent. */
  delegation?: CgroupDelegation;
  /** The memory controller's OOM killer spares processes at oom_score_adj -1000, and the
   * programs inherit this process's value: where it was -1000, it was raised to -999 (see
   * oom-score.ts) and this is the value it had. */
  oomScoreAdjRaisedFrom?: number;
}

/** A streaming run's output (Sandbox.runStreaming): a live session shows it as the program writes
 * it, where run() gives it only at the end. */
export interface StreamingIo {
  /** Each chunk the program writes, in order within each stream, as it arrives. At most
   * limits.outputBytes bytes in all (stdout and stderr together; the chunk that crosses it is cut
   * at the limit), after which the run is killed and its verdict is `output_limit`: the bound
   * run() keeps, which a session's client cannot flood past. (A pipe is no file: fileSizeBytes
   * does not bound it, as it bounds each of run()'s streams.) Never called after `result` has settled. */
  onOutput(stream: 'stdout' | 'stderr', chunk: Buffer): void;
}

/** A terminal's window, in character cells (each 1-65535). */
export interface TerminalSize {
  rows: number;
  cols: number;
}

/** A streaming run under way: the caller types into its stdin while it runs. */
export interface StreamingRun {
  /** Queues bytes for the program's stdin (delivered in order; copied, so the caller may reuse
   * its buffer). Ignored after end(), and once the program has ended or closed its stdin: a
   * session's client may type after the program is gone, which is no error. */
  write(data: Uint8Array): void;
  /** Closes the program's stdin once what was queued is delivered: it then reads end of file.
   * On a terminal, which has no end but its hang-up, this writes the terminal's end-of-file
   * character (Ctrl-D, 0x04) instead: the program reads end of file where its line is empty, as
   * a terminal's user ends a program's input. Either way, later writes are ignored. */
  end(): void;
  /** On a terminal: its new window size (the program gets SIGWINCH); else nothing. Throws
   * SandboxSpecError for a size outside 1-65535. */
  resize(size: TerminalSize): void;
  /** As run()'s result. stdout and stderr hold what onOutput was given (stdoutTruncated /
   * stderrTruncated when the output limit cut them). Settles only after every chunk has been
   * given to onOutput, so that a session can send the result as its last message. */
  readonly result: Promise<RunResult>;
}

/** One engine instance: owns `<cgroupParent>/<instanceId>` in every cgroup hierarchy. */
export interface Sandbox {
  readonly instanceId: string;
  readonly cgroups: SandboxCgroups;
  /** prepare + start, the container destroyed a little after the result (10 ms); setup failures
   * come back as verdict `internal_error`. */
  run(spec: RunSpec): Promise<RunResult>;
  /** Two programs at once in two fresh containers, each one's stdout the other's stdin (an
   * interactive problem: the solution and its interactor). Neither spec may have stdin or
   * stderrToStdout; their stdout is the pipe, so the results' stdout is empty. Each ends on its own
   * (its exit, its limits); the other then reads end of file or gets SIGPIPE. Results in the
   * specs' order; setup failures come back as verdict `internal_error` for both. */
  runConnected(first: RunSpec, second: RunSpec): Promise<[RunResult, RunResult]>;
  /** One program in a fresh container whose stdin, stdout and stderr are pipes to the caller
   * (a live session). spec.stdin must be empty and spec.stderrToStdout false (SandboxSpecError,
   * thrown at once, as is any other spec error: a caller learns of it before it has a session
   * to end). Setup failures come back as verdict internal_error in `result`. With `terminal`,
   * the program's stdin, stdout and stderr are one pseudo-terminal of that size, its controlling
   * terminal (docs/theory-of-operation.md, "Live runs"): its output, both streams in the order
   * written and as the terminal writes it (a newline as CR LF, what is typed echoed), comes as
   * `stdout`, and the result's stderr is empty. */
  runStreaming(spec: RunSpec, io: StreamingIo, terminal?: TerminalSize): StreamingRun;
  /** Throws SandboxError when a setup step fails. */
  prepare(spec: ContainerSpec): Promise<PreparedContainer>;
  /** Removes the cgroup subtrees of instances whose process is gone; returns their ids. */
  cleanupStale(): Promise<string[]>;
  /** Removes this instance's cgroups and releases its lock (prepared containers are destroyed). */
  close(): Promise<void>;
}

/** A spec the engine refuses before touching the kernel: `field` says which part. */
export class SandboxSpecError extends Error {
  override readonly name = 'SandboxSpecError';
  constructor(
    readonly field: string,
    /** What is wrong with it, e.g. "must be an integer". */
    readonly reason: string,
  ) {
    super(`invalid sandbox spec: ${field}: ${reason}`);
  }
}
