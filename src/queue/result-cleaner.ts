// Finished jobs out of Redis once their results have expired (CELLBLOCK_RESULT_TTL_SECONDS), and
// sent notifications once they are an hour old (notification-queue.ts): the only removal of
// either. BullMQ's removeOnComplete/removeOnFail age removed old finished jobs only as a later job
// finished (on a quiet queue the last jobs' submissions, stdin and outputs, and the
// Idempotency-Keys that name them, stayed in Redis for ever), and by the clock of the worker
// finishing it: one whose clock was ahead removed every other worker's jobs early. This compares
// the jobs' finish with Redis's clock (redis-clock.ts), as the reads do. Reads stop at the TTL by
// themselves (readJobRecord); this removes what they no longer show, within an interval of its
// expiry.
//
// Run by the API's job client (client.ts): the API is what reads results, so it is there whenever
// they can be read, with or without workers (which may be none for a while), and it knows the TTL
// (it gives each job its age: a worker's own setting may be unset, since nothing else of the
// worker reads it). Every API process runs one, on its own timer; a guard key in Redis lets one
// clean per half interval go through for the whole deployment, however many API processes it has.
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Clock } from './redis-clock.js';
import { settledWithin } from './unreachable.js';

/** The longest interval between cleans: with the default TTL (an hour) a result leaves Redis at
 * most a minute after it expired. */
export const MAX_RESULT_CLEAN_INTERVAL_MS = 60_000;
/** Jobs removed by one clean call (one Lua script, which holds Redis while it runs: ~1000 DELs is
 * a few ms); calls are repeated while they remove a full batch. */
export const RESULT_CLEAN_BATCH = 1000;
/** The finished jobs' sets, by BullMQ's names: a job is in one only once it has finished. */
const FINISHED_SETS = ['completed', 'failed'] as const;
/** How long stop() waits for a clean under way (its calls time out by themselves: the API's
 * connection has a command timeout). */
const STOP_WAIT_MS = 5000;

/** How often a cleaner runs for a TTL: a quarter of it, at most MAX_RESULT_CLEAN_INTERVAL_MS. A
 * result leaves Redis at most this long after it expired. */
export function resultCleanIntervalMs(resultTtlMs: number): number {
  return Math.max(1, Math.min(MAX_RESULT_CLEAN_INTERVAL_MS, Math.ceil(resultTtlMs / 4)));
}

export interface ResultCleanerOptions {
  queue: Queue;
  redis: Redis;
  /** The deployment's guard for this queue and TTL (RedisKeys.resultClean). */
  guardKey: string;
  /** How long a finished job is kept, from its finish (BullMQ's finishedOn). */
  ttlMs: number;
  /** What finishedOn is compared with: this process's estimate of Redis's clock. */
  clock: Clock;
  /** Whether Redis is reachable now: a clean is not tried while it is away (no error per tick). */
  ready(): boolean;
  /** A clean failed: the next tick tries again. */
  onError(error: unknown): void;
}

export interface ResultCleaner {
  /** No more cleans; waits (a while) for the one under way. */
  stop(): Promise<void>;
}

export function startResultCleaner(options: ResultCleanerOptions): ResultCleaner {
  const { queue, redis, ttlMs, clock } = options;
  const intervalMs = resultCleanIntervalMs(ttlMs);
  // Half the interval: a process whose tick comes an interval after the last clean (its own, say)
  // always finds the guard gone, so no result waits longer than an interval; and the deployment
  // cleans at most twice per interval, whatever its number of API processes.
  const guardMs = Math.max(1, Math.floor(intervalMs / 2));
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const clean = async (): Promise<void> => {
    for (const type of FINISHED_SETS) {
      if (stopped) return;
      // A set's score is its jobs' finishedOn, which Queue.clean compares (finishedOn <= now -
      // grace): counted first, so that a quiet queue costs one ZCOUNT and no clean, whose script
      // adds a `cleaned` event to the queue's stream even when it removes nothing.
      const due = await redis.zcount(queue.keys[type]!, 0, clock.now() - ttlMs);
      if (due === 0) continue;
      for (;;) {
        // Queue.clean's now is this process's Date.now(): the grace less Redis's lead over it
        // makes its cutoff Redis's now less the TTL.
        const batch = await queue.clean(ttlMs - clock.offsetMs, RESULT_CLEAN_BATCH, type);
        if (batch.length < RESULT_CLEAN_BATCH || stopped) break;
      }
    }
  };

  const tick = async (): Promise<void> => {
    if (!options.ready()) return;
    if ((await redis.set(options.guardKey, String(process.pid), 'PX', guardMs, 'NX')) !== 'OK') return;
    await clean();
  };

  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      running = tick()
        .catch(options.onError)
        .finally(() => {
          running = undefined;
          if (!stopped) schedule(intervalMs);
        });
    }, delayMs);
    // The process's life is its server's and workers', not this timer's.
    timer.unref();
  };
  // The first at a random point of the interval: API processes started together (a deployment's
  // rollout) do not all ask for the guard at once, and one started after a while without any
  // cleans within an interval.
  schedule(Math.floor(Math.random() * intervalMs));

  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      if (running) await settledWithin(running, STOP_WAIT_MS);
    },
  };
}
