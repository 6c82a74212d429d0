// The per-process limits a worker runs within, as its service manager or shell gave them
// (/proc/self/limits): its open files (RLIMIT_NOFILE), which every container and job of the worker
// count against, and its processes (RLIMIT_NPROC), which bounds every sandbox's (inherited, or
// lowered to the run's pids on a uid of its own). Checked by the process that would start
// workers, before it forks them (checkMachineForWorkers); the open files limit also sizes each
// worker's pool (runWorkerProcess). docs/theory-of-operation.md, "Host limits".
import { readFileSync } from 'node:fs';
import { describeJobsAtOnce, type Config } from '../config.js';
import { JOB_DESCRIPTORS, jobsWithinOpenFiles, WORKER_OWN_DESCRIPTORS } from '../executor/descriptors.js';
import { defaultStageLimits } from '../executor/limits.js';
import type { Runtime } from '../images/types.js';
import { withVariants } from '../images/variants.js';
import { jobsAtOnce } from '../queue/background-lane.js';
import { PREPARED_CONTAINER_DESCRIPTORS, PREPARING_CONTAINER_DESCRIPTORS } from '../sandbox/descriptors.js';
import { WorkerPreflightError } from './worker-preflight.js';

/** A resource limit's soft and hard values; Infinity where unlimited. */
export interface ResourceLimit {
  soft: number;
  hard: number;
}

export interface ProcessLimits {
  openFiles: ResourceLimit;
  processes: ResourceLimit;
}

/** The limits of /proc/self/limits (`text`: its contents). Node raises its own soft open files
 * limit to the hard one as it starts, so that only the hard one bounds a worker. */
export function readProcessLimits(text: string = readFileSync('/proc/self/limits', 'utf8')): ProcessLimits {
  const limit = (name: string): ResourceLimit => {
    const match = new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text);
    if (!match) throw new Error(`no "${name}" line in /proc/self/limits`);
    const value = (field: string) => (field === 'unlimited' ? Number.POSITIVE_INFINITY : Number(field));
    return { soft: value(match[1]!), hard: value(match[2]!) };
  };
  return { openFiles: limit('Max open files'), processes: limit('Max processes') };
}

type OpenFilesSettings = Pick<Config, 'workerConcurrency' | 'backgroundSlots' | 'backgroundAfterMs' | 'poolRefillConcurrency'>;

export interface OpenFilesPlan {
  /** The hard open files limit. */
  limit: number;
  /** What the worker needs before any ready container: its own, its jobs' at once, its refills'. */
  needed: number;
  /** Ready containers (each PREPARED_CONTAINER_DESCRIPTORS) the rest of the limit holds. */
  readyContainers: number;
}

/** How a worker with these settings fits in the hard open files limit `limit`. */
export function openFilesPlan(settings: OpenFilesSettings, limit: number): OpenFilesPlan {
  const jobs = jobsAtOnce(settings.workerConcurrency, settings.backgroundSlots, settings.backgroundAfterMs);
  const needed = WORKER_OWN_DESCRIPTORS + jobs * JOB_DESCRIPTORS + settings.poolRefillConcurrency * PREPARING_CONTAINER_DESCRIPTORS;
  const readyContainers = limit === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : Math.max(0, Math.floor((limit - needed) / PREPARED_CONTAINER_DESCRIPTORS));
  return { limit, needed, readyContainers };
}

const RAISE_OPEN_FILES = 'raise it (systemd: LimitNOFILE=; a shell, as root: ulimit -Hn N before the command)';

/**
 * Refuses (WorkerPreflightError) a hard open files limit `hardLimit` below what a worker needs for
 * its jobs at once (openFilesPlan's `needed`): its jobs would fail for want of descriptors under
 * load, and only a load would show it. Else returns the plan, and a warning where the limit holds fewer
 * ready containers than the worker's pools could keep (`mostReady`): each worker then keeps at
 * most that many (PoolOptions.maxReadyContainers), and jobs past them wait for theirs to be made.
 */
export function checkOpenFiles(settings: OpenFilesSettings, hardLimit: number, mostReady: number): { plan: OpenFilesPlan; warning?: string } {
  const plan = openFilesPlan(settings, hardLimit);
  const jobs = describeJobsAtOnce(settings);
  if (plan.limit < plan.needed) {
    const mostJobs = jobsWithinOpenFiles(plan.limit, settings.poolRefillConcurrency);
    const fewer = mostJobs >= 1 ? `, or run fewer jobs at once (at most ${mostJobs} here)` : '';
    throw new WorkerPreflightError(
      `the open files limit (RLIMIT_NOFILE, hard) of this process is ${plan.limit}, below the ${plan.needed} descriptors a worker process may need: ${jobs}, up to ${JOB_DESCRIPTORS} each; ${settings.poolRefillConcurrency} container(s) prepared at once (CELLBLOCK_POOL_REFILL_CONCURRENCY), up to ${PREPARING_CONTAINER_DESCRIPTORS} each; ${WORKER_OWN_DESCRIPTORS} of its own. ${capitalized(RAISE_OPEN_FILES)}${fewer}`,
    );
  }
  if (plan.readyContainers >= mostReady) return { plan };
  return {
    plan,
    warning: `the open files limit (RLIMIT_NOFILE, hard) of this process, ${plan.limit}, leaves each worker process room for ${plan.readyContainers} ready container(s) (${PREPARED_CONTAINER_DESCRIPTORS} descriptors each) beside ${jobs}, of the ${mostReady} its pools could keep (CELLBLOCK_POOL_MAX_READY for each image's runs and compiles): each keeps at most ${plan.readyContainers} ready, and a job that finds none waits for its container to be made; ${RAISE_OPEN_FILES} to keep more`,
  };
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The largest pids limit of a stage of `runtimes` (their variants too): at their defaults (a
 * compile's, a run's), and the most a job may ask for (their maxLimits). */
function mostPids(runtimes: readonly Runtime[]): { byDefault?: { pids: number; runtime: Runtime }; atMost?: { pids: number; runtime: Runtime } } {
  let byDefault: { pids: number; runtime: Runtime } | undefined;
  let atMost: { pids: number; runtime: Runtime } | undefined;
  for (const runtime of withVariants(runtimes)) {
    const stages = defaultStageLimits(runtime);
    const pids = Math.max(stages.run.pids, stages.compile?.pids ?? 0);
    if (pids > (byDefault?.pids ?? 0)) byDefault = { pids, runtime };
    if (runtime.maxLimits.pids > (atMost?.pids ?? 0)) atMost = { pids: runtime.maxLimits.pids, runtime };
  }
  return { ...(byDefault ? { byDefault } : {}), ...(atMost ? { atMost } : {}) };
}

/**
 * The processes limit (RLIMIT_NPROC) against the runtimes' pids limits. The engine only ever
 * lowers it (native/src/container.cc: a run on a uid of its own gets its pids, at most the
 * worker's soft limit; any other inherits the worker's), and the kernel counts it per uid over the
 * machine's processes and threads of that uid, so that a program is held to the soft limit (the
 * one the kernel applies) where it is below the pids limit of its stage, and fails as the
 * program's own doing (javac: "Failed to start thread", a compile_error). Raising a hard limit
 * takes CAP_SYS_RESOURCE, which a worker may lack. Refuses (WorkerPreflightError) a limit below the pids a stage of some runtime has at its
 * defaults; returns a warning for one below what a job may ask for (maxLimits).
 */
export function checkProcesses(runtimes: readonly Runtime[], limit: ResourceLimit): string | undefined {
  const { byDefault, atMost } = mostPids(runtimes);
  const figures = `the processes limit (RLIMIT_NPROC) of this process is ${limit.soft}${limit.hard !== limit.soft ? ` (hard ${limit.hard})` : ''}, which every sandbox inherits and the kernel counts per sandbox uid (its processes and threads)`;
  const raise = `raise it to at least ${atMost?.pids ?? 0} (systemd: LimitNPROC=; a shell, as root: ulimit -u N before the command)`;
  if (byDefault && limit.soft < byDefault.pids) {
    throw new WorkerPreflightError(
      `${figures}: below the ${byDefault.pids} pids that ${byDefault.runtime.id}'s stages have at its default limits, so that jobs would fail by the host's limit rather than their own (a thread or process not started); ${raise}`,
    );
  }
  if (atMost && limit.soft < atMost.pids) {
    return `${figures}: below the ${atMost.pids} pids a job of ${atMost.runtime.id} may ask for (its maxLimits), so that a job asking for more than ${limit.soft} is held to ${limit.soft}; ${raise}`;
  }
  return undefined;
}
