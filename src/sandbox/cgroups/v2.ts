// cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): one directory per container. Controllers
// must be enabled in the subtree_control of every ancestor ("+cpu +memory +pids"); processes live
// only in leaves (our parent and instance directories hold none). Limits: memory.max,
// memory.swap.max = 0, pids.max, cpu.max "quota period". Accounting: cpu.stat usage_usec,
// memory.peak, memory.events oom_kill. Leftovers die through cgroup.kill.
import fs from 'node:fs';
import path from 'node:path';
import type { Limits } from '../types.js';
import type { CgroupBackend, CgroupUsage, RunCgroup } from './backend.js';
import { CgroupError } from './backend.js';
import {
  killCgroupPids,
  listSubdirs,
  makeCgroupDir,
  readCgroupFile,
  readCgroupKey,
  removeCgroupDir,
  removeCgroupDirIfEmpty,
  removeCgroupTree,
  writeCgroupFile,
} from './cgroupfs.js';
import { V2_CONTROLLERS } from './detect.js';
import { cpuQuota } from './cpu-quota.js';

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

class V2RunCgroup implements RunCgroup {
  readonly procsPaths: string[];
  readonly cpuUsagePath: string;
  readonly cpuUsageScaleNs = NS_PER_US;
  private cpuBaselineUs = 0;
  private oomKillsBaseline = 0;
  /** memory.peak resets per open file (Linux 6.12+): reset and read through this descriptor. */
  private peakFd: number | null = null;

  constructor(private readonly dir: string) {
    this.procsPaths = [path.join(dir, 'cgroup.procs')];
    this.cpuUsagePath = path.join(dir, 'cpu.stat');
  }

  applyLimits(limits: Limits): void {
    writeCgroupFile(path.join(this.dir, 'memory.max'), String(limits.memoryBytes));
    const swapMax = path.join(this.dir, 'memory.swap.max');
    if (fs.existsSync(swapMax)) writeCgroupFile(swapMax, '0');
    writeCgroupFile(path.join(this.dir, 'pids.max'), String(limits.pids));
    const { quotaUs, periodUs } = cpuQuota(limits.cpuCores);
    writeCgroupFile(path.join(this.dir, 'cpu.max'), `${quotaUs} ${periodUs}`);
  }

  startAccounting(): void {
    this.cpuBaselineUs = readCgroupKey(this.cpuUsagePath, 'usage_usec');
    this.oomKillsBaseline = readCgroupKey(path.join(this.dir, 'memory.events'), 'oom_kill');
    this.closePeakFd();
    const peakFile = path.join(this.dir, 'memory.peak');
    try {
      const fd = fs.openSync(peakFile, 'r+');
      try {
        fs.writeSync(fd, 'reset');
      } catch {
        // Before 6.12 memory.peak is read-only: the peak then includes init's setup.
      }
      this.peakFd = fd;
    } catch (error) {
      throw new CgroupError('open', peakFile, (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN');
    }
  }

  private readPeak(): number {
    if (this.peakFd === null) return Number.parseInt(readCgroupFile(path.join(this.dir, 'memory.peak')), 10);
    const buffer = Buffer.alloc(64);
    const length = fs.readSync(this.peakFd, buffer, 0, buffer.length, 0);
    return Number.parseInt(buffer.subarray(0, length).toString('utf8'), 10);
  }

  private closePeakFd(): void {
    if (this.peakFd !== null) fs.closeSync(this.peakFd);
    this.peakFd = null;
  }

  readUsage(): CgroupUsage {
    return {
      cpuTimeNs: (readCgroupKey(this.cpuUsagePath, 'usage_usec') - this.cpuBaselineUs) * NS_PER_US,
      peakMemoryBytes: this.readPeak(),
      oomKills: readCgroupKey(path.join(this.dir, 'memory.events'), 'oom_kill') - this.oomKillsBaseline,
    };
  }

  async destroy(): Promise<void> {
    this.closePeakFd();
    killV2Cgroup(this.dir);
    await removeCgroupDir(this.dir, killV2Cgroup);
  }
}

export class CgroupV2Backend implements CgroupBackend {
  readonly version = 'v2' as const;
  readonly parentPaths: string[];
  private readonly parent: string;

  constructor(
    private readonly mountPoint: string,
    parentName: string,
  ) {
    this.parent = path.join(mountPoint, parentName);
    this.parentPaths = [this.parent];
  }

  /** Enables our controllers on every level from the mount point down to dir's parent. */
  private enableControllersDownTo(dir: string): void {
    const relative = path.relative(this.mountPoint, dir).split(path.sep).filter(Boolean);
    let current = this.mountPoint;
    const wanted = V2_CONTROLLERS.map((c) => `+${c}`).join(' ');
    for (const part of relative) {
      const enabled = readCgroupFile(path.join(current, 'cgroup.subtree_control')).trim().split(/\s+/);
      if (!V2_CONTROLLERS.every((c) => enabled.includes(c))) {
        writeCgroupFile(path.join(current, 'cgroup.subtree_control'), wanted);
      }
      current = path.join(current, part);
      makeCgroupDir(current);
    }
  }

  createInstance(instanceId: string): void {
    const instanceDir = path.join(this.parent, instanceId);
    this.enableControllersDownTo(instanceDir);
    // The instance's children (the containers) need the controllers too.
    writeCgroupFile(
      path.join(instanceDir, 'cgroup.subtree_control'),
      V2_CONTROLLERS.map((c) => `+${c}`).join(' '),
    );
  }

  createRunCgroup(instanceId: string, containerId: string): RunCgroup {
    const dir = path.join(this.parent, instanceId, containerId);
    makeCgroupDir(dir);
    return new V2RunCgroup(dir);
  }

  listInstances(): string[] {
    return listSubdirs(this.parent);
  }

  async removeInstance(instanceId: string): Promise<void> {
    await removeCgroupTree(path.join(this.parent, instanceId), killV2Cgroup);
  }

  removeParentIfEmpty(): void {
    for (const parent of this.parentPaths) removeCgroupDirIfEmpty(parent);
  }
}
