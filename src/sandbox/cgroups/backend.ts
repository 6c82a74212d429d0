// What the engine needs from a cgroup hierarchy, implemented once per version (v1.ts, v2.ts) and
// chosen by detect.ts. The native side only joins, polls the CPU time, lowers the CPU weight and
// reads the accounting files' texts at the run's end, through the files and descriptors named
// here; everything else about cgroups, what those texts mean included, is here.
import type { Limits } from '../types.js';

export type CgroupVersion = 'v1' | 'v2';

/** Usage of one run, read once every process of it is dead. */
export interface CgroupUsage {
  cpuTimeNs: number;
  peakMemoryBytes: number;
  /** OOM kills since `startAccounting`. */
  oomKills: number;
}

/** The cgroup(s) of one container: `<parent>/<instanceId>/<containerId>` in each hierarchy. */
export interface RunCgroup {
  /** Files the program's child writes "0" to, joining the run's cgroup before it is released
   * (init stays out): v1 each hierarchy's `tasks`, v2 `cgroup.procs`. */
  readonly joinPaths: string[];
  /** v2: the cgroup's directory; the program's child is cloned straight into it (clone3's
   * CLONE_INTO_CGROUP) and writes no join file, where the kernel and build allow. Empty: v1. */
  readonly cloneIntoPath: string;
  /** File whose first integer is CPU time; see cpuUsageScaleNs. */
  readonly cpuUsagePath: string;
  readonly cpuUsageScaleNs: number;
  /** A file whose first integer is the memory in use, read by init at every poll of the run, the
   * greatest reading handed to usageFrom: where the kernel keeps no peak (v2 before Linux 5.19).
   * Empty: the accounting files hold the peak. */
  readonly memorySamplePath: string;
  /** The CPU weight file (v1 cpu.shares, v2 cpu.weight) and the background weight, its default's
   * BACKGROUND_CPU_WEIGHT_FRACTION: init writes the one to the other once the run has used
   * StartSpec.backgroundAfterCpuMs of CPU time. The bandwidth limit (cpuCores) is unchanged. */
  readonly cpuWeightPath: string;
  readonly backgroundCpuWeight: number;
  /** Memory (no swap), pids and CPU bandwidth: the program's alone, init is not in the cgroup.
   * Writes only what differs from the last application (prepare may apply the expected limits,
   * start then the real ones). */
  applyLimits(limits: Limits): void;
  /** Resets or records the baselines of CPU, peak memory and OOM kills and opens the files
   * readUsage reads; once the container is ready (its only task in the cgroup, the program's
   * child, sleeps until "go"), so that none of this is on the job's critical path. */
  startAccounting(): void;
  /** The descriptors of the files readUsage reads, once accounting started: the engine reads
   * them at the run's end (native/, where the run's end is collected) and hands their texts, in
   * this order, to usageFrom, with the greatest of init's readings of memorySamplePath (0
   * without one). */
  accountingFds(): number[];
  usageFrom(texts: readonly string[], sampledPeakMemoryBytes?: number): CgroupUsage;
  /** Reads the files itself: where the engine could not. */
  readUsage(): CgroupUsage;
  /** Kills any process still in the cgroup, then removes it. */
  destroy(): Promise<void>;
}

export interface CgroupBackend {
  readonly version: CgroupVersion;
  /** Where each hierarchy's `cellblock` parent is, for logs and leak checks. */
  readonly parentPaths: string[];
  /** Where a run's peak memory comes from (a file, or how it is sampled), for the start-up log;
   * final once createInstance has run. */
  readonly peakMemorySource: string;
  /** v2 only: the leaf that the processes of our base were moved to, so that the controllers
   * could be enabled there (a container with a cgroup namespace of its own, or a cgroup
   * delegated to this process); undefined when nothing was moved. */
  readonly hostProcessesMovedTo?: string;
  /** CELLBLOCK_CGROUP_BASE=delegated, below the hierarchy's root (v1: below some hierarchy's root):
   * the base, and whether a mark confirmed its delegation. */
  readonly delegation?: CgroupDelegation;
  /** Throws the CgroupError createInstance would throw for what reading alone can tell (a
   * delegated v2 base without cpu, memory or pids), making, moving and enabling nothing: a
   * preflight's check (checkSandboxCgroups). The detection's own refusals come earlier, from
   * createCgroupBackend. */
  checkUsable(): void;
  createInstance(instanceId: string): void;
  createRunCgroup(instanceId: string, containerId: string): RunCgroup;
  /** Instance ids that have a subtree under the parent. */
  listInstances(): string[];
  /** Kills what is left in an instance's subtree and removes it. */
  removeInstance(instanceId: string): Promise<void>;
  /** Removes the `cellblock` parent itself when no instance is left in it; on v2, where the
   * base's processes were moved to its leaf (hostProcessesMovedTo, by this process or another),
   * first moves them back and disables the controllers enabled for it, unless another worker's
   * instance is still there (that one's close does it then). */
  releaseParent(): void;
}

/** The cgroup a worker took as delegated to it (CgroupBase `delegated`). */
export interface CgroupDelegation {
  /** v2: the base. v1: the cgroup its manager would mark (this process's own in systemd's
   * hierarchy: name=systemd, or the unified one of a hybrid layout), the marked one when found. */
  base: string;
  /** The extended attribute its manager set on it (systemd 251+: trusted.delegate); absent when
   * none was found, so nothing confirms that it was delegated. */
  mark?: string;
  /** v1: each controller's parent cgroup, under this process's own cgroup in its hierarchy (not
   * always all in one unit's: a controller whose cgroup is the root is the root's). */
  parents?: Record<string, string>;
}

/** A cgroup operation failed; `path` says which file or directory. */
export class CgroupError extends Error {
  override readonly name = 'CgroupError';
  constructor(
    readonly operation: string,
    readonly path: string,
    readonly code: string,
    message?: string,
  ) {
    super(message ?? `cgroup ${operation} failed on ${path}: ${code}`);
  }
}

/** A background run's CPU weight as a fraction of the default one (v1 cpu.shares 1024 → 64, v2
 * cpu.weight 100 → 6): against a run at the default weight on the same core, it gets about 6%.
 * Weights only divide contended time; a background run alone on a core still gets all of it. */
export const BACKGROUND_CPU_WEIGHT_FRACTION = 1 / 16;
