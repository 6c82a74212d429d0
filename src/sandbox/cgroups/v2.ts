// cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): one directory per container. Controllers
// must be enabled in the subtree_control of every ancestor ("+cpu +memory +pids"); processes live
// only in leaves (our parent and instance directories hold none). Limits: memory.max,
// memory.swap.max = 0 (memory.oom.group = 1: an OOM kill takes the whole run), pids.max,
// cpu.max "quota period". Accounting: cpu.stat usage_usec,
// memory.peak (before Linux 5.19, which has none: memory.current, sampled by init at each poll),
// memory.events oom_kill. Leftovers die through cgroup.kill. In a container's own
// cgroup namespace the hierarchy's root holds the container's processes, and a cgroup delegated
// to cellblock (CELLBLOCK_CGROUP_BASE=delegated) holds the service's own; see enableControllers.
import fs from 'node:fs';
import path from 'node:path';
import type { Limits } from '../types.js';
import { BACKGROUND_CPU_WEIGHT_FRACTION, CgroupError, type CgroupBackend, type CgroupDelegation, type CgroupUsage, type RunCgroup } from './backend.js';
import {
  type CgroupLimitValues,
  cgroupPids,
  killCgroupPids,
  listSubdirs,
  makeCgroupDir,
  OpenCgroupFile,
  closeCgroupFiles,
  parseCgroupInteger,
  parseCgroupKey,
  startedAccounting,
  readCgroupFile,
  removeCgroupDir,
  removeCgroupDirIfEmpty,
  removeCgroupTree,
  writeCgroupFile,
} from './cgroupfs.js';
import { V2_CONTROLLERS } from './detect.js';
import { cpuQuota } from './cpu-quota.js';

/** The leaf under our parent that takes the processes of a cgroup namespace's root when the
 * controllers cannot be enabled there otherwise (see enableControllers). Not an instance: it has
 * no lock file, and listInstances leaves it out. */
export const V2_HOST_PROCESSES_LEAF = 'host-processes';

export interface V2BackendOptions {
  /** Measure peak memory by sampling memory.current, as on a kernel without memory.peak (before
   * Linux 5.19), even where memory.peak exists: tests of that way. */
  samplePeakMemory?: boolean;
}

/** CgroupBackend.peakMemorySource where memory.peak is missing. */
const PEAK_SAMPLED = 'memory.current, sampled at each poll (no memory.peak before Linux 5.19)';

/** Rounds of moving processes between the base and the leaf (moveProcesses). */
const MOVE_ROUNDS = 10;

/** cpu.weight of a new cgroup (the kernel's default). */
const V2_DEFAULT_CPU_WEIGHT = 100;

const NS_PER_US = 1000;

/** cgroup.kill (Linux 5.14+) kills every process of the cgroup at once; else one by one. */
function killV2Cgroup(dir: string): void {
  const killFile = path.join(dir, 'cgroup.kill');
  if (fs.existsSync(killFile)) {
    try {
      fs.writeFileSync(killFile, '1');
      return;
    } catch {
      // fall through to the per-process kill
    }
  }
  killCgroupPids(dir);
}

/** Moves every process of `from` to `to`, in rounds: a process forked meanwhile is born in
 * `from` and needs another. Returns those still in `from`, with the code of the last refusal
 * (ESRCH, a process that exited meanwhile, is none). */
function moveProcesses(from: string, to: string): { left: number[]; refused: string } {
  const procs = path.join(to, 'cgroup.procs');
  let refused = 'EBUSY';
  for (let round = 0; round < MOVE_ROUNDS; round++) {
    const pids = cgroupPids(from);
    if (pids.length === 0) return { left: [], refused };
    for (const pid of pids) {
      try {
        fs.writeFileSync(procs, String(pid));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
        if (code !== 'ESRCH') refused = code;
      }
    }
  }
  return { left: cgroupPids(from), refused };
}

/** Writes a cgroup file; false where another worker's cgroups stand in the way (EBUSY: the
 * kernel's constraints, see restoreBase) or took the cgroup away (ENOENT: it removed it). */
function writeUnlessTaken(file: string, value: string): boolean {
  try {
    writeCgroupFile(file, value);
    return true;
  } catch (error) {
    if (error instanceof CgroupError && (error.code === 'EBUSY' || error.code === 'ENOENT')) return false;
    throw error;
  }
}

/** memory.peak is writable (a per-descriptor reset) from Linux 6.12; read-only before. */
function openPeakFile(file: string): OpenCgroupFile {
  try {
    return new OpenCgroupFile(file, 'r+');
  } catch {
    return new OpenCgroupFile(file, 'r');
  }
}

class V2RunCgroup implements RunCgroup {
  readonly joinPaths: string[];
  readonly cloneIntoPath: string;
  readonly cpuUsagePath: string;
  readonly cpuUsageScaleNs = NS_PER_US;
  readonly cpuWeightPath: string;
  readonly backgroundCpuWeight = Math.round(V2_DEFAULT_CPU_WEIGHT * BACKGROUND_CPU_WEIGHT_FRACTION);
  private cpuBaselineUs = 0;
  private oomKillsBaseline = 0;
  private applied: CgroupLimitValues | null = null;
  readonly memorySamplePath: string;
  /** Opened by startAccounting, read after the run, closed by destroy. memory.peak resets per
   * open file (Linux 6.12+): it is reset and read through this one descriptor. Where the kernel
   * has no memory.peak, `memoryPeak` is memory.current, read once more at the end. */
  private accounting: { cpuStat: OpenCgroupFile; memoryEvents: OpenCgroupFile; memoryPeak: OpenCgroupFile } | null = null;

  constructor(
    private readonly dir: string,
    peakSampled: boolean,
  ) {
    this.joinPaths = [path.join(dir, 'cgroup.procs')];
    this.cloneIntoPath = dir;
    this.cpuUsagePath = path.join(dir, 'cpu.stat');
    this.cpuWeightPath = path.join(dir, 'cpu.weight');
    this.memorySamplePath = peakSampled ? path.join(dir, 'memory.current') : '';
  }

  /** No memory.peak here: init samples memory.current (memorySamplePath). */
  private get peakSampled(): boolean {
    return this.memorySamplePath !== '';
  }

  applyLimits(limits: Limits): void {
    if (this.applied?.memoryBytes !== limits.memoryBytes) {
      writeCgroupFile(path.join(this.dir, 'memory.max'), String(limits.memoryBytes));
      if (this.applied === null) {
        const swapMax = path.join(this.dir, 'memory.swap.max');
        if (fs.existsSync(swapMax)) writeCgroupFile(swapMax, '0');
        // At its memory limit a run ends whole, as at its time limits: the OOM killer takes every
        // process of the cgroup, not the largest alone while a shell around it runs on (and
        // prints, and uses CPU) until another limit stops it. Linux 4.19+; init is not in it.
        const oomGroup = path.join(this.dir, 'memory.oom.group');
        if (fs.existsSync(oomGroup)) writeCgroupFile(oomGroup, '1');
      }
    }
    if (this.applied?.pids !== limits.pids) writeCgroupFile(path.join(this.dir, 'pids.max'), String(limits.pids));
    if (this.applied?.cpuCores !== limits.cpuCores) {
      const { quotaUs, periodUs } = cpuQuota(limits.cpuCores);
      writeCgroupFile(path.join(this.dir, 'cpu.max'), `${quotaUs} ${periodUs}`);
    }
    this.applied = { memoryBytes: limits.memoryBytes, pids: limits.pids, cpuCores: limits.cpuCores };
  }

  startAccounting(): void {
    this.accounting = closeCgroupFiles(this.accounting);
    const files = {
      cpuStat: new OpenCgroupFile(this.cpuUsagePath, 'r'),
      memoryEvents: new OpenCgroupFile(path.join(this.dir, 'memory.events'), 'r'),
      memoryPeak: this.peakSampled ? new OpenCgroupFile(this.memorySamplePath, 'r') : openPeakFile(path.join(this.dir, 'memory.peak')),
    };
    this.accounting = files;
    this.cpuBaselineUs = files.cpuStat.readKey('usage_usec');
    this.oomKillsBaseline = files.memoryEvents.readKey('oom_kill');
    if (this.peakSampled) return;
    try {
      files.memoryPeak.write('reset');
    } catch {
      // Before 6.12 memory.peak is read-only: the peak then includes init's setup.
    }
  }

  accountingFds(): number[] {
    const files = startedAccounting(this.accounting, this.cpuUsagePath);
    return [files.cpuStat.descriptor, files.memoryPeak.descriptor, files.memoryEvents.descriptor];
  }

  usageFrom([cpuStat = '', memoryPeak = '', memoryEvents = '']: readonly string[], sampledPeakMemoryBytes = 0): CgroupUsage {
    const files = startedAccounting(this.accounting, this.cpuUsagePath);
    const peakMemoryBytes = parseCgroupInteger(memoryPeak, files.memoryPeak.file);
    return {
      cpuTimeNs: (parseCgroupKey(cpuStat, 'usage_usec') - this.cpuBaselineUs) * NS_PER_US,
      // Sampled: what is still charged at the end (the run's files in /tmp, its page cache) or
      // init's greatest reading during the run, whichever is more.
      peakMemoryBytes: this.peakSampled ? Math.max(peakMemoryBytes, sampledPeakMemoryBytes) : peakMemoryBytes,
      oomKills: parseCgroupKey(memoryEvents, 'oom_kill') - this.oomKillsBaseline,
    };
  }

  readUsage(): CgroupUsage {
    const files = startedAccounting(this.accounting, this.cpuUsagePath);
    return this.usageFrom([files.cpuStat.read(), files.memoryPeak.read(), files.memoryEvents.read()]);
  }

  async destroy(): Promise<void> {
    this.accounting = closeCgroupFiles(this.accounting);
    killV2Cgroup(this.dir);
    await removeCgroupDir(this.dir, killV2Cgroup);
  }
}

export class CgroupV2Backend implements CgroupBackend {
  readonly version = 'v2' as const;
  readonly parentPaths: string[];
  hostProcessesMovedTo?: string;
  private readonly parent: string;
  /** memory.peak came with Linux 5.19: without it, init samples memory.current (see RunCgroup.memorySamplePath). */
  private peakSampled: boolean;

  /** `baseDir`: the cgroup our parent goes under, the mount point or below it (a delegated base,
   * see CgroupBase), whose ancestors have cpu, memory and pids enabled already (they are the
   * kernel's or the base's manager's). */
  private readonly delegated: boolean;
  /** A delegated base below the hierarchy's root, and the mark that confirmed it, if any. */
  readonly delegation?: CgroupDelegation;

  constructor(
    private readonly baseDir: string,
    parentName: string,
    options: V2BackendOptions & {
      /** The base is a cgroup delegated to this process (CELLBLOCK_CGROUP_BASE=delegated). */
      delegated?: boolean;
      delegation?: CgroupDelegation;
    } = {},
  ) {
    this.parent = path.join(baseDir, parentName);
    this.parentPaths = [this.parent];
    this.peakSampled = options.samplePeakMemory ?? false;
    this.delegated = options.delegated ?? false;
    if (options.delegation) this.delegation = options.delegation;
  }

  get peakMemorySource(): string {
    return this.peakSampled ? PEAK_SAMPLED : 'memory.peak';
  }

  checkUsable(): void {
    if (this.delegated) this.checkDelegatedControllers();
  }

  /** Enables our controllers on every level from the base down to dir's parent. */
  private enableControllersDownTo(dir: string): void {
    this.checkUsable();
    const relative = path.relative(this.baseDir, dir).split(path.sep).filter(Boolean);
    let current = this.baseDir;
    for (const part of relative) {
      this.enableControllers(current);
      current = path.join(current, part);
      makeCgroupDir(current);
    }
  }

  /** A delegated base offers what its manager delegated: without cpu, memory or pids in its
   * cgroup.controllers, enabling them would fail with a bare ENOENT. */
  private checkDelegatedControllers(): void {
    const file = path.join(this.baseDir, 'cgroup.controllers');
    const available = readCgroupFile(file).trim().split(/\s+/);
    const absent = V2_CONTROLLERS.filter((controller) => !available.includes(controller));
    if (absent.length === 0) return;
    throw new CgroupError(
      'delegate',
      file,
      'ENOENT',
      `cgroup v2: the cgroup cellblock was started in (${this.baseDir}, CELLBLOCK_CGROUP_BASE=delegated) lacks ${absent.join(', ')} ` +
        `(its cgroup.controllers: ${available.join(' ') || 'none'}): its manager did not delegate them (systemd: Delegate=yes, or Delegate=cpu memory pids)`,
    );
  }

  /** Enables cpu, memory and pids for dir's children. A cgroup with processes of its own cannot
   * (the "no internal processes" rule; only the hierarchy's true root is exempt). The base does
   * hold processes where this runs inside a container with a cgroup namespace of its own
   * (Docker's default on v2 hosts, Kubernetes pods: the root of that hierarchy is the
   * container's own cgroup, with all of its processes), and where the base is the cgroup a
   * service manager delegated to this process (systemd's Delegate=yes: the service's processes
   * are in it). Those processes are then moved to a leaf under our parent, as Docker-in-Docker's
   * entrypoint moves them to `/init` and as systemd's documentation asks of a delegated
   * service; a cgroup below the base keeps the kernel's EBUSY. */
  private enableControllers(dir: string): void {
    const file = path.join(dir, 'cgroup.subtree_control');
    const enabled = readCgroupFile(file).trim().split(/\s+/);
    if (V2_CONTROLLERS.every((c) => enabled.includes(c))) return;
    const wanted = V2_CONTROLLERS.map((c) => `+${c}`).join(' ');
    const busy = (error: unknown) => error instanceof CgroupError && error.code === 'EBUSY';
    try {
      writeCgroupFile(file, wanted);
      return;
    } catch (error) {
      if (!(busy(error) && dir === this.baseDir)) throw error;
    }
    // A process forked in the base between the move and the write (another worker of the
    // service starting, say) makes the write EBUSY again: move and try again.
    for (let round = 1; ; round++) {
      const leaf = this.moveRootProcessesToLeaf();
      try {
        writeCgroupFile(file, wanted);
        this.hostProcessesMovedTo = leaf;
        return;
      } catch (error) {
        if (!busy(error) || round >= MOVE_ROUNDS) throw error;
      }
    }
  }

  /** The leaf that the base's processes are moved to (see enableControllers). */
  private get hostProcessesLeaf(): string {
    return path.join(this.parent, V2_HOST_PROCESSES_LEAF);
  }

  /** Moves the base's processes to V2_HOST_PROCESSES_LEAF; returns the leaf's path. */
  private moveRootProcessesToLeaf(): string {
    const leaf = this.hostProcessesLeaf;
    makeCgroupDir(leaf);
    const { left, refused } = moveProcesses(this.baseDir, leaf);
    if (left.length > 0) {
      throw new CgroupError(
        'move',
        path.join(this.baseDir, 'cgroup.procs'),
        refused,
        `cgroup v2: the controllers cannot be enabled in ${this.baseDir}, which holds processes (${left.join(', ')}) that could not be moved to ${leaf} (${refused}); ` +
          (!this.delegated
            ? "give cellblock the host's cgroup namespace (docker run --cgroupns=host, compose `cgroup: host`) or a cgroup without processes of its own"
            : 'start cellblock in a cgroup delegated to it (systemd: Delegate=yes), or without CELLBLOCK_CGROUP_BASE=delegated'),
      );
    }
    return leaf;
  }

  /** Undoes what enableControllers did to a base that held processes, once no instance is left
   * under our parent: the base's processes (this one among them) go back to it from the leaf, the
   * controllers enabled for our parent are disabled again, the leaf and our parent go. The base's
   * manager can then put a process in it again (systemd starting the unit anew, a container's
   * exec), which the kernel refuses (EBUSY) while it enables a controller for children.
   *
   * In the kernel's order (cgroup-v2.rst): a controller cannot be disabled in a cgroup while a
   * child enables it ("Top-down Constraint"), so our parent's subtree_control first, then the
   * base's; no process can move into a cgroup below the root that enables any controller while a
   * child of it holds processes (the "No Internal Process Constraint", checked at each move), so
   * the processes only then. Another worker under this base, starting or running meanwhile, is
   * seen as an instance, or makes a step fail with EBUSY (its instance enables the controllers in
   * our parent; its start enables them in the base again once the base is empty): what is left is
   * then that one's, and its own close undoes it.
   *
   * The base held processes, so it enabled no domain controller (memory) before: ours are taken
   * as enabled by us (cpu and pids, threaded controllers, a manager may enable in a cgroup with
   * processes; none does that for a cgroup it delegates or a container's). Any other the base
   * enables (its manager's, threaded too) is disabled while the processes move and enabled again
   * after. */
  private restoreBase(): void {
    if (this.listInstances().length > 0) return;
    const leaf = this.hostProcessesLeaf;
    const ours = V2_CONTROLLERS.map((controller) => `-${controller}`).join(' ');
    if (!writeUnlessTaken(path.join(this.parent, 'cgroup.subtree_control'), ours)) return;
    const baseControl = path.join(this.baseDir, 'cgroup.subtree_control');
    const enabled = readCgroupFile(baseControl).trim().split(/\s+/).filter(Boolean);
    const managers = enabled.filter((controller) => !(V2_CONTROLLERS as readonly string[]).includes(controller));
    if (enabled.length > 0 && !writeUnlessTaken(baseControl, enabled.map((controller) => `-${controller}`).join(' '))) return;
    const { left, refused } = moveProcesses(leaf, this.baseDir);
    if (left.length > 0) {
      if (refused === 'EBUSY') return;
      throw new CgroupError(
        'move',
        path.join(leaf, 'cgroup.procs'),
        refused,
        `cgroup v2: the processes of ${leaf} (${left.join(', ')}) could not be moved back to ${this.baseDir} (${refused})`,
      );
    }
    removeCgroupDirIfEmpty(leaf);
    removeCgroupDirIfEmpty(this.parent);
    if (managers.length > 0) writeCgroupFile(baseControl, managers.map((controller) => `+${controller}`).join(' '));
  }

  createInstance(instanceId: string): void {
    if (instanceId === V2_HOST_PROCESSES_LEAF) {
      throw new CgroupError('mkdir', path.join(this.parent, instanceId), 'EEXIST', `cgroup v2: ${instanceId} is a reserved name under ${this.parent}`);
    }
    const instanceDir = path.join(this.parent, instanceId);
    this.enableControllersDownTo(instanceDir);
    // The instance's children (the containers) need the controllers too.
    this.enableControllers(instanceDir);
    if (!fs.existsSync(path.join(instanceDir, 'memory.peak'))) this.peakSampled = true;
  }

  createRunCgroup(instanceId: string, containerId: string): RunCgroup {
    const dir = path.join(this.parent, instanceId, containerId);
    makeCgroupDir(dir);
    return new V2RunCgroup(dir, this.peakSampled);
  }

  listInstances(): string[] {
    return listSubdirs(this.parent).filter((name) => name !== V2_HOST_PROCESSES_LEAF);
  }

  async removeInstance(instanceId: string): Promise<void> {
    await removeCgroupTree(path.join(this.parent, instanceId), killV2Cgroup);
  }

  releaseParent(): void {
    if (fs.existsSync(this.hostProcessesLeaf)) this.restoreBase();
    else removeCgroupDirIfEmpty(this.parent);
  }
}
