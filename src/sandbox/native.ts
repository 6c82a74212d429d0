// The native addon's engine (native/), typed once. Nothing outside src/sandbox imports this: the
// rest of cellblock speaks src/sandbox/types.ts. The addon is found and loaded by
// src/native-addon.ts; its lock-file functions, which the image builder uses too, are
// src/lock-file.ts's.
import { loadNativeAddon } from '../native-addon.js';

/** Options of `new Container`: the container's filesystem, identity and cgroup files. */
export interface NativePrepareOptions {
  rootDir: string;
  workDirHostPath: string;
  workDir: string;
  hostname: string;
  tmpBytes: number;
  /** RunCgroup.joinPaths: the program's child writes "0" to each. */
  cgroupJoinPaths: string[];
  /** RunCgroup.cloneIntoPath: the program's child is cloned into this cgroup ('' for none). */
  cgroupCloneIntoPath: string;
  /** File whose first integer is the cgroup's CPU time (polled by init against the limit). */
  cpuUsagePath: string;
  cpuUsageScaleNs: number;
  /** RunCgroup.memorySamplePath: read by init at every poll of the run ('' for none). */
  memorySamplePath: string;
  /** RunCgroup.cpuWeightPath, opened for init, which writes backgroundCpuWeight to it once the
   * run has used NativeStartOptions.backgroundAfterCpuMs. */
  cpuWeightPath: string;
  backgroundCpuWeight: number;
  /** net.ipv4.tcp_rmem of the container's network namespace ("min default max"; tcp-memory.ts). */
  tcpRmem: string;
  /** A pipe end (createPipe's) that is the program's stdin in place of the memfd: a connected run.
   * The container takes a copy; the caller closes its own. */
  stdinPipeFd?: number;
  /** Likewise the program's stdout: its output then goes to the pipe's reader and is not kept. */
  stdoutPipeFd?: number;
  /** Likewise the program's stderr (a streaming run, whose caller reads it as it is written). */
  stderrPipeFd?: number;
  /** ContainerSpec.ignoreSigpipe. */
  ignoreSigpipe?: boolean;
  /** The three pipe fds are one terminal's peer (openTerminal's): the program's controlling
   * terminal. */
  controllingTerminal?: boolean;
}

export interface NativeStartOptions {
  argv: string[];
  /** "KEY=value" entries. */
  env: string[];
  /** Directories searched when argv[0] has no '/'. */
  searchPath: string;
  cwd: string;
  stdin: Buffer;
  uid: number;
  gid: number;
  cpuTimeMs: number;
  wallTimeMs: number;
  outputBytes: number;
  fileSizeBytes: number;
  openFiles: number;
  stackBytes: number;
  tmpBytes: number;
  /** The program's RLIMIT_NPROC (at most the worker's own): the run's pids limit where its uid is
   * its own (ContainerIdentity.uidOfItsOwn); 0: none set, the worker's inherited. */
  pids: number;
  cpuRlimitSeconds: number;
  /** How often init checks CPU time and output size. */
  pollIntervalMs: number;
  /** CPU time after which init lowers the run's CPU weight; 0: never. */
  backgroundAfterCpuMs: number;
  /** net.core.somaxconn of the container's network namespace (tcp-memory.ts). */
  somaxconn: number;
  /** The program's fd 2 is its fd 1 (StartSpec.stderrToStdout). */
  stderrToStdout: boolean;
  /** RunCgroup.accountingFds: read when the run's end is collected (NativeExit.accountingTexts). */
  accountingFds: number[];
}

export interface NativeFailure {
  step: string;
  errno: number;
}

/** How a run ended: from init's "done", or once init is reaped (a failed setup, an init gone without "done"). */
export interface NativeExit {
  failure?: NativeFailure;
  started: boolean;
  status: 'exited' | 'signaled' | 'not_run';
  /** Exit code or signal number, per `status`. */
  statusValue: number;
  killedForCpu: boolean;
  killedForWall: boolean;
  killedForOutput: boolean;
  killedForCancel: boolean;
  wallTimeNs: number;
  /** From "go" to the program's execve (the setup left after "go"). */
  execNs: number;
  stdout: Buffer;
  stderr: Buffer;
  /** Full sizes of the streams; stdout/stderr hold at most outputBytes together. */
  stdoutBytes: number;
  stderrBytes: number;
  /** The texts of NativeStartOptions.accountingFds' files, in their order, read once every
   * process of the run was dead; absent when the run did not start or a read failed. */
  accountingTexts?: string[];
  /** The greatest of init's readings of NativePrepareOptions.memorySamplePath; 0 without one. */
  sampledPeakMemoryBytes: number;
}

/** "ready": init waits for "go". "exit": the run is over, every process of it dead (with the
 * exit). "gone": init itself is reaped and the addon's state for it released; always last. */
export type NativeEventHandler = (kind: 'ready' | 'exit' | 'gone', exit?: NativeExit) => void;

export interface NativeContainer {
  start(options: NativeStartOptions): void;
  /** Once ready: prepares the watch on the run's end that start() starts (off the job's path). */
  armRunEndWatch(): void;
  cancel(): void;
  ref(): void;
  unref(): void;
  readonly initPid: number;
}

/** Errors thrown by the addon for a failed setup step carry these. */
export interface NativeSetupErrorFields {
  step?: string;
  errno?: number;
}

/** What the addon holds right now (leak checks). */
export interface NativeResourceCounts {
  mappedStacks: number;
  supervisorThreads: number;
  /** Containers whose descriptors are not yet released (released when "gone" is delivered). */
  openStates: number;
}

/** How the programs' children got into their run cgroups since the addon was loaded: cloned
 * into it (v2, clone3 CLONE_INTO_CGROUP) or cloned and then joined through the files. */
export interface NativeJoinCounts {
  clonedInto: number;
  joined: number;
}

/** The program's seccomp filter and the policy it was built from (tests check one against the
 * other). Numbers are the system calls' numbers on this architecture. */
export interface NativeSeccompPolicy {
  /** struct sock_filter[], 8 bytes each, in the machine's byte order. */
  filter: Buffer;
  /** Refused with EPERM. */
  refused: number[];
  /** Refused with ENOSYS (clone3: libc falls back to clone, whose flags the filter can read). */
  notImplemented: number[];
  /** clone: refused with EPERM when its flags hold any of cloneNamespaceFlags. */
  cloneNr: number;
  cloneNamespaceFlags: number;
  /** socket and socketpair: refused with EAFNOSUPPORT unless their family (the first argument)
   * is one of socketFamilies, and with EPROTONOSUPPORT unless their protocol (the third) is one
   * of that family's `protocols` (empty: any). */
  socketNrs: number[];
  socketFamilies: { family: number; protocols: number[] }[];
  /** setsockopt: succeeds without effect (errno 0) when its level (the second argument) is
   * socketOptionLevel (SOL_SOCKET) and its option (the third) one of ignoredSocketOptions
   * (SO_RCVBUF, SO_RCVLOWAT). */
  setsockoptNr: number;
  socketOptionLevel: number;
  ignoredSocketOptions: number[];
  /** ioctl: refused with EPERM when its request (the second argument) is one of refusedIoctls. */
  ioctlNr: number;
  refusedIoctls: number[];
  /** setrlimit (0 where there is none) and prlimit64 with a new limit: refused with EPERM for
   * fixedRlimit (RLIMIT_CORE, which the engine sets to 1). */
  setrlimitNr: number;
  prlimitNr: number;
  fixedRlimit: number;
  /** The only audit architecture allowed; any other kills the process. */
  auditArch: number;
  /** Set in an x32 system call's number (which kills the process); 0 where there is none. */
  x32SyscallBit: number;
  /** It and every number above (below x32SyscallBit): ENOSYS, calls newer than the policy. */
  firstUnreviewedNr: number;
}

interface NativeModule {
  resourceCounts(): NativeResourceCounts;
  joinCounts(): NativeJoinCounts;
  seccompPolicy(): NativeSeccompPolicy;
  /** Prepares a container (the addon's Container) and reports its events to onEvent. */
  createContainer(options: NativePrepareOptions, onEvent: NativeEventHandler): NativeContainer;
  /** A pipe's [read, write] ends, close-on-exec, for a connected or streaming run's containers (the
   * caller closes the ends it gave them once the containers are prepared). */
  createPipe(): [number, number];
  /** A pseudo-terminal's [master, peer], both close-on-exec, the master non-blocking: a streaming
   * run's terminal (the peer given as the three pipe fds with controllingTerminal; the caller
   * closes it once the container is prepared, and reads and writes the master). */
  openTerminal(rows: number, cols: number): [number, number];
  /** TIOCSWINSZ on a terminal's master: the program gets SIGWINCH. Throws (with `errno`). */
  setTerminalSize(masterFd: number, rows: number, cols: number): void;
  /** A pidfd for the process `pid` now (close it with fs.closeSync), or -errno (ESRCH: no such
   * process; ENOSYS: a kernel before 5.3). */
  openPidfd(pid: number): number;
  /** An extended attribute's value, or -errno (ENODATA: not set; ERANGE: over 256 bytes). */
  readXattr(path: string, name: string): string | number;
  /** A signal (by number) to a pidfd's process: 0, or errno (ESRCH: it has ended). */
  signalPidfd(fd: number, signal: number): number;
}

/** An "exit" as the addon passes it (exitArguments in native/src/addon.cc): positional, since an
 * object literal built here costs less than the addon setting each property. */
type RawExitArguments = [
  started: boolean,
  status: NativeExit['status'],
  statusValue: number,
  killedForCpu: boolean,
  killedForWall: boolean,
  killedForOutput: boolean,
  killedForCancel: boolean,
  wallTimeNs: number,
  execNs: number,
  stdout: Buffer,
  stderr: Buffer,
  stdoutBytes: number,
  stderrBytes: number,
  failureStep: string | undefined,
  failureErrno: number,
  /** Each accounting file's text followed by a NUL. */
  accountingText: string | undefined,
  sampledPeakMemoryBytes: number,
];

type RawEventHandler = (kind: 'ready' | 'exit' | 'gone', ...exit: RawExitArguments | []) => void;

interface RawModule extends Omit<NativeModule, 'createContainer'> {
  Container: new (options: NativePrepareOptions, onEvent: RawEventHandler) => NativeContainer;
}

function exitFromArguments(args: RawExitArguments): NativeExit {
  const [started, status, statusValue, killedForCpu, killedForWall, killedForOutput, killedForCancel,
    wallTimeNs, execNs, stdout, stderr, stdoutBytes, stderrBytes, failureStep, failureErrno, accountingText,
    sampledPeakMemoryBytes] = args;
  const exit: NativeExit = {
    started, status, statusValue, killedForCpu, killedForWall, killedForOutput, killedForCancel,
    wallTimeNs, execNs, stdout, stderr, stdoutBytes, stderrBytes, sampledPeakMemoryBytes,
  };
  if (failureStep !== undefined) exit.failure = { step: failureStep, errno: failureErrno };
  if (accountingText !== undefined) exit.accountingTexts = accountingText.split('\0').slice(0, -1);
  return exit;
}

const { Container, ...functions } = loadNativeAddon() as RawModule;

export const native: NativeModule = {
  ...functions,
  createContainer: (options, onEvent) =>
    new Container(options, (kind, ...exit) =>
      onEvent(kind, exit.length > 0 ? exitFromArguments(exit as RawExitArguments) : undefined),
    ),
};
