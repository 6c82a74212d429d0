// CPU time spent by the service's processes, from /proc/<pid>/stat: a process's own user+system
// time, plus what its reaped children used (the sandboxes a worker ran), plus its live
// descendants' own time (the pool's mount agent). Taken before and after a run, the difference
// divided by the jobs is the CPU each process spends per job — the figure that bounds a closed
// loop on a machine whose cores are all busy.
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc/<pid>/stat times; 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
const ticksToMs = (ticks: number) => (ticks * 1000) / CLOCK_TICKS_PER_SECOND;

interface ProcStat {
  pid: number;
  ppid: number;
  ownTicks: number;
  reapedChildrenTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may contain spaces: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  const field = (n: number) => Number(fields[n - 3]);
  return { pid, ppid: field(4), ownTicks: field(14) + field(15), reapedChildrenTicks: field(16) + field(17) };
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) stats.push(stat);
  }
  return stats;
}

export interface TreeCpuMs {
  /** The process itself. */
  ownMs: number;
  /** Children it has reaped (for a worker: the sandboxes, programs included). */
  reapedMs: number;
  /** Descendants still alive (for a worker: the pool's mount agent). */
  liveDescendantsMs: number;
}

/** CPU used so far by each named process tree. */
export function cpuMsByTree(roots: Record<string, number>): Record<string, TreeCpuMs> {
  const stats = allStats();
  const children = new Map<number, ProcStat[]>();
  for (const stat of stats) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat]);
  const byPid = new Map(stats.map((stat) => [stat.pid, stat]));
  const result: Record<string, TreeCpuMs> = {};
  for (const [name, pid] of Object.entries(roots)) {
    const root = byPid.get(pid);
    if (!root) continue;
    let liveTicks = 0;
    const queue = [...(children.get(pid) ?? [])];
    while (queue.length > 0) {
      const descendant = queue.pop()!;
      liveTicks += descendant.ownTicks;
      queue.push(...(children.get(descendant.pid) ?? []));
    }
    result[name] = { ownMs: ticksToMs(root.ownTicks), reapedMs: ticksToMs(root.reapedChildrenTicks), liveDescendantsMs: ticksToMs(liveTicks) };
  }
  return result;
}

export function cpuMsDifference(before: Record<string, TreeCpuMs>, after: Record<string, TreeCpuMs>): Record<string, TreeCpuMs> {
  const zero: TreeCpuMs = { ownMs: 0, reapedMs: 0, liveDescendantsMs: 0 };
  return Object.fromEntries(
    Object.entries(after).map(([name, ms]) => {
      const was = before[name] ?? zero;
      return [name, { ownMs: ms.ownMs - was.ownMs, reapedMs: ms.reapedMs - was.reapedMs, liveDescendantsMs: ms.liveDescendantsMs - was.liveDescendantsMs }];
    }),
  );
}

/** Busy time of the whole machine so far, all cores together (/proc/stat: user, nice, system,
 * irq and softirq; not idle, iowait or steal). Beside the processes' own figures it shows what
 * no process of the stack is charged with: kernel threads (network namespaces' and cgroups'
 * teardown, RCU callbacks) and anything else running on the machine. */
export function machineBusyMs(): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // "cpu  user nice system idle iowait irq softirq steal guest guest_nice" (guest is inside user).
  const [user, nice, system, , , irq, softirq] = first.trim().split(/\s+/).slice(1).map(Number) as number[];
  return ticksToMs(user! + nice! + system! + irq! + softirq!);
}

/** CPU of the children this process has reaped so far (a bare runner and its programs, once it exits). */
export function reapedChildrenMs(): number {
  const self = readStat(process.pid);
  if (!self) throw new Error('cannot read /proc/self/stat');
  return ticksToMs(self.reapedChildrenTicks);
}
