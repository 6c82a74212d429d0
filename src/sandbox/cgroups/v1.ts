// cgroup v1: one directory per controller hierarchy (cpu, cpuacct, memory, pids; co-mounted
// controllers share one). Limits: memory.limit_in_bytes (+ memory.memsw.limit_in_bytes when swap
// accounting exists, memory.kmem.tcp.limit_in_bytes for socket buffers), pids.max,
// cpu.cfs_quota_us/cfs_period_us. Accounting: cpuacct.usage (ns), memory.max_usage_in_bytes, the
// `oom_kill` line of memory.oom_control.
import fs from 'node:fs';
import path from 'node:path';
import type { Limits } from '../types.js';
import { BACKGROUND_CPU_WEIGHT_FRACTION, type CgroupBackend, type CgroupDelegation, type CgroupUsage, type RunCgroup } from './backend.js';
import {
  type CgroupLimitValues,
  killCgroupPids,
  OpenCgroupFile,
  closeCgroupFiles,
  parseCgroupInteger,
  parseCgroupKey,
  startedAccounting,
  listSubdirs,
  makeCgroupDir,
  removeCgroupDir,
  removeCgroupDirIfEmpty,
  removeCgroupTree,
  writeCgroupFile,
} from './cgroupfs.js';
import type { V1Controller } from './detect.js';
import { cpuQuota } from './cpu-quota.js';

/** cpu.shares of a new cgroup (the kernel's default). */
const V1_DEFAULT_CPU_SHARES = 1024;

class V1RunCgroup implements RunCgroup {
  readonly joinPaths: string[];
  /** v1 has no CLONE_INTO_CGROUP: the child joins through `tasks`. */
  readonly cloneIntoPath = '';
  readonly cpuUsagePath: string;
  readonly cpuUsageScaleNs = 1;
  /** memory.max_usage_in_bytes keeps the peak: nothing to sample. */
  readonly memorySamplePath = '';
  readonly cpuWeightPath: string;
  readonly backgroundCpuWeight = Math.round(V1_DEFAULT_CPU_SHARES * BACKGROUND_CPU_WEIGHT_FRACTION);
  private oomKillsBaseline = 0;
  private applied: CgroupLimitValues | null = null;
  /** Opened by startAccounting, read after the run, closed by destroy. */
  private accounting: { cpuUsage: OpenCgroupFile; maxUsage: OpenCgroupFile; oomControl: OpenCgroupFile } | null = null;

  constructor(
    private readonly dirs: Record<V1Controller, string>,
    /** One directory per distinct hierarchy (co-mounted controllers share one). */
    private readonly distinctDirs: string[],
  ) {
    // `tasks`, not cgroup.procs: the program's child is single-threaded and writes "0" (itself),
    // which the kernel moves without the global threadgroup lock. Through cgroup.procs the attach
    // takes that lock for writing, which waits for an RCU grace period after an idle moment
    // (7 ms p50 after 50 ms idle here, against 0.04 ms through `tasks`: npm run bench:attach) and
    // for every fork in flight on the machine (a fork bomb's).
    this.joinPaths = distinctDirs.map((dir) => path.join(dir, 'tasks'));
    this.cpuUsagePath = path.join(dirs.cpuacct, 'cpuacct.usage');
    this.cpuWeightPath = path.join(dirs.cpu, 'cpu.shares');
  }

  applyLimits(limits: Limits): void {
    const memory = this.dirs.memory;
    if (this.applied?.memoryBytes !== limits.memoryBytes) {
      // v1 keeps memsw >= limit at every moment (EINVAL otherwise): raise memsw first, lower it last.
      const limit = path.join(memory, 'memory.limit_in_bytes');
      const memsw = path.join(memory, 'memory.memsw.limit_in_bytes');
      const files = fs.existsSync(memsw) ? [limit, memsw] : [limit];
      const raising = this.applied !== null && limits.memoryBytes > this.applied.memoryBytes;
      for (const file of raising ? files.reverse() : files) writeCgroupFile(file, String(limits.memoryBytes));
      // v1 charges TCP socket buffers to a cgroup only once it has a TCP limit, and then against
      // that limit alone (v2 counts them in memory.current): without it, a job could queue
      // hundreds of MiB of the host's TCP memory (tcp_mem is global) on its own loopback. The same
      // amount as the memory limit: sockets stop taking data there (sends wait or fail EAGAIN).
      // Connections a listener has not yet accepted are charged to no cgroup, v1 or v2: the
      // network namespace's sysctls bound those (../tcp-memory.ts).
      const tcp = path.join(memory, 'memory.kmem.tcp.limit_in_bytes');
      if (fs.existsSync(tcp)) writeCgroupFile(tcp, String(limits.memoryBytes));
    }
    if (this.applied?.pids !== limits.pids) writeCgroupFile(path.join(this.dirs.pids, 'pids.max'), String(limits.pids));
    if (this.applied?.cpuCores !== limits.cpuCores) {
      const { quotaUs, periodUs } = cpuQuota(limits.cpuCores);
      writeCgroupFile(path.join(this.dirs.cpu, 'cpu.cfs_period_us'), String(periodUs));
      writeCgroupFile(path.join(this.dirs.cpu, 'cpu.cfs_quota_us'), String(quotaUs));
    }
    this.applied = { memoryBytes: limits.memoryBytes, pids: limits.pids, cpuCores: limits.cpuCores };
  }

  startAccounting(): void {
    this.accounting = closeCgroupFiles(this.accounting);
    const memory = this.dirs.memory;
    const files = {
      cpuUsage: new OpenCgroupFile(this.cpuUsagePath, 'r+'),
      maxUsage: new OpenCgroupFile(path.join(memory, 'memory.max_usage_in_bytes'), 'r+'),
      oomControl: new OpenCgroupFile(path.join(memory, 'memory.oom_control'), 'r'),
    };
    this.accounting = files;
    // Writing 0 resets the CPU counter and sets the peak to the current usage: what init's setup
    // used is not the program's.
    files.cpuUsage.write('0');
    files.maxUsage.write('0');
    this.oomKillsBaseline = files.oomControl.readKey('oom_kill');
  }

  accountingFds(): number[] {
    const files = startedAccounting(this.accounting, this.cpuUsagePath);
    return [files.cpuUsage.descriptor, files.maxUsage.descriptor, files.oomControl.descriptor];
  }

  usageFrom([cpuUsage = '', maxUsage = '', oomControl = '']: readonly string[]): CgroupUsage {
    const files = startedAccounting(this.accounting, this.cpuUsagePath);
    return {
      cpuTimeNs: parseCgroupInteger(cpuUsage, files.cpuUsage.file),
      peakMemoryBytes: parseCgroupInteger(maxUsage, files.maxUsage.file),
      oomKills: parseCgroupKey(oomControl, 'oom_kill') - this.oomKillsBaseline,
    };
  }

  readUsage(): CgroupUsage {
    const files = startedAccounting(this.accounting, this.cpuUsagePath);
    return this.usageFrom([files.cpuUsage.read(), files.maxUsage.read(), files.oomControl.read()]);
  }

  async destroy(): Promise<void> {
    this.accounting = closeCgroupFiles(this.accounting);
    // The container's init is reaped before this, so the cgroups are normally empty: a leftover
    // shows as EBUSY, and removeCgroupDir kills it and retries. The hierarchies are independent.
    await Promise.all(this.distinctDirs.map((dir) => removeCgroupDir(dir, killCgroupPids)));
  }
}

export class CgroupV1Backend implements CgroupBackend {
  readonly version = 'v1' as const;
  readonly parentPaths: string[];
  readonly peakMemorySource = 'memory.max_usage_in_bytes';

  readonly delegation?: CgroupDelegation;

  /** `parents`: our parent cgroup in each controller's hierarchy (co-mounted controllers share
   * one); `delegation`, under a delegated base. */
  constructor(
    private readonly parents: Record<V1Controller, string>,
    delegation?: CgroupDelegation,
  ) {
    this.parentPaths = [...new Set(Object.values(parents))];
    if (delegation) this.delegation = delegation;
  }

  private dirsOf(...parts: string[]): { dirs: Record<V1Controller, string>; distinct: string[] } {
    const dirs = {} as Record<V1Controller, string>;
    for (const [controller, parent] of Object.entries(this.parents) as [V1Controller, string][]) {
      dirs[controller] = path.join(parent, ...parts);
    }
    return { dirs, distinct: [...new Set(Object.values(dirs))] };
  }

  /** v1 needs nothing the detection did not find: each controller mounted. */
  checkUsable(): void {}

  createInstance(instanceId: string): void {
    for (const dir of this.dirsOf(instanceId).distinct) makeCgroupDir(dir);
  }

  createRunCgroup(instanceId: string, containerId: string): RunCgroup {
    const { dirs, distinct } = this.dirsOf(instanceId, containerId);
    for (const dir of distinct) makeCgroupDir(dir);
    return new V1RunCgroup(dirs, distinct);
  }

  listInstances(): string[] {
    return [...new Set(this.parentPaths.flatMap((parent) => listSubdirs(parent)))];
  }

  async removeInstance(instanceId: string): Promise<void> {
    for (const dir of this.dirsOf(instanceId).distinct) await removeCgroupTree(dir, killCgroupPids);
  }

  releaseParent(): void {
    for (const parent of this.parentPaths) removeCgroupDirIfEmpty(parent);
  }
}
