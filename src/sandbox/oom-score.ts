// The OOM killer and this process's oom_score_adj. The kernel never picks a process whose
// oom_score_adj is -1000 (OOM_SCORE_ADJ_MIN), not even in a memory cgroup at its limit, and every
// program inherits this process's value: its child shares this process's memory until execve,
// and the kernel applies a write of the value to every process sharing that memory, so it cannot
// be set for the program alone before execve. A worker started at -1000 (systemd's
// OOMScoreAdjust=-1000, say) would leave every memory bomb faulting at its cgroup's limit until
// the CPU or wall limit ended it, with the wrong verdict. Hence -999 for this process: still the
// last the host's OOM killer picks, and the programs killable at their own limit.
import fs from 'node:fs';

const OOM_SCORE_ADJ_MIN = -1000;
const OOM_SCORE_ADJ_KILLABLE = -999;

/** Raises this process's oom_score_adj to -999 where it is -1000; returns the value it had when
 * it raised it. A process may always raise its own value. */
export function keepProgramsOomKillable(file = '/proc/self/oom_score_adj'): number | undefined {
  let value: number;
  try {
    value = Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return undefined; // no procfs entry: no OOM killer setting to inherit
  }
  if (value !== OOM_SCORE_ADJ_MIN) return undefined;
  fs.writeFileSync(file, String(OOM_SCORE_ADJ_KILLABLE));
  return value;
}
