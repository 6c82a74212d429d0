// A stand-in worker (the real worker's queue side, no sandbox: fixtures.ts's startStandInWorker)
// in a process of its own, for tests that run it with its clock shifted (test/helpers/shift-clock.mjs)
// as a worker on another host would be. Its executor, by CELLBLOCK_TEST_EXECUTOR:
//   ok           every job is ok at once, its stdout its stdin;
//   unavailable  the first job finds the executor unusable (its pool's mount agent died, as it
//                were): it is handed back, and the worker stops itself (exit 3);
//   slow         every job runs CELLBLOCK_TEST_RUN_MS, then is ok (cancelled if its run is stopped
//                first), printing `run <job's stdin>` as it starts;
//   short-once   the first job meets a host shortage (no sandbox uid: handed back, delayed), every
//                later one is ok at once.
// CELLBLOCK_TEST_SHUTDOWN_GRACE_MS, when set, is its shutdown grace (the notifier's too);
// CELLBLOCK_TEST_LOCK_DURATION_MS its jobs' lock duration (its stall check every quarter of it).
// Prints `ready <its Date.now()>` once it takes jobs; a SIGTERM closes it (exit 0).
import type { ExecuteRequest, ExecuteResult } from '../../src/executor/types.js';
import { ExecutorError } from '../../src/executor/errors.js';
import type { JobExecutor } from '../../src/queue/worker.js';
import { okResult } from '../helpers/stand-in-result.js';
import { startStandInWorker } from './fixtures.js';

const {
  CELLBLOCK_TEST_REDIS_URL: url,
  CELLBLOCK_TEST_PREFIX: prefix,
  CELLBLOCK_TEST_EXECUTOR: mode = 'ok',
  CELLBLOCK_TEST_SHUTDOWN_GRACE_MS: graceMs,
  CELLBLOCK_TEST_LOCK_DURATION_MS: lockMs,
  CELLBLOCK_TEST_RUN_MS: runMs = '0',
} = process.env;
if (!url || !prefix) throw new Error('CELLBLOCK_TEST_REDIS_URL and CELLBLOCK_TEST_PREFIX are needed');


let unusable: Error | undefined;
let shortages = 0;
let loseNow: (cause: Error) => void = () => {};
const executor: JobExecutor = {
  execute: async (job: ExecuteRequest): Promise<ExecuteResult> => {
    if (mode === 'unavailable') {
      unusable = new Error('the pool can make no more slots (stand-in: its mount agent died)');
      loseNow(unusable);
      throw new ExecutorError('unavailable', unusable.message);
    }
    if (mode === 'short-once' && shortages++ === 0) throw new ExecutorError('no_sandbox_uid', 'every sandbox uid is leased (stand-in)');
    if (mode === 'slow') {
      process.stdout.write(`run ${job.stdin ?? ''}\n`);
      const stopped = await new Promise<boolean>((resolve) => {
        if (job.signal?.aborted) return resolve(true);
        const timer = setTimeout(() => resolve(false), Number(runMs));
        job.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve(true)), { once: true });
      });
      if (stopped) return { ...okResult(Buffer.alloc(0)), verdict: 'cancelled' };
    }
    return okResult(Buffer.from(job.stdin ?? ''));
  },
  close: async () => {},
  lost: new Promise<Error>((resolve) => (loseNow = resolve)),
  get unusable() {
    return unusable;
  },
};

const worker = await startStandInWorker({ redis: { url }, prefix }, executor, {
  ...(graceMs ? { shutdownGraceMs: Number(graceMs) } : {}),
  ...(lockMs ? { lockDurationMs: Number(lockMs), stalledIntervalMs: Number(lockMs) / 4 } : {}),
});
process.stdout.write(`ready ${Date.now()}\n`);
process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
void worker.stoppedByItself.then(() => process.exit(3));
