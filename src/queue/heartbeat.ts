// A worker's liveness in Redis: one key per worker process, rewritten every third of its TTL.
// The key expiring is the worker's death notice, so /readyz needs no clock shared between
// machines — Redis's own expiry decides.
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';
import { writeRefusal } from './redis-health.js';
import { settledWithin } from './unreachable.js';

/** What a worker process's liveness key says of it (/readyz, /metrics, Judge0's /workers, and
 * the queue's check that a live worker runs a job's fields). */
export interface WorkerLiveness {
  workerId: string;
  host: string;
  pid: number;
  concurrency: number;
  running: number;
  /** The worker's executor pool figures, by image then figure (ready, inUse, hits, ...). */
  pool?: Record<string, Record<string, number>>;
  /** The worker's kept judge compiles by figure (entries, bytes, hits, misses, waits, notKept); absent
   * where it keeps none. */
  judgeCompiles?: Record<string, number>;
  /** The LATER_JOB_FIELDS this worker runs jobs with, and the runtime variants it has (variantJobField);
   * absent from workers older than them. */
  jobFields?: string[];
}

/** Longest stop() waits for Redis to remove the liveness key (it expires by itself anyway). */
const REMOVE_TIMEOUT_MS = 2000;

export interface Heartbeat {
  stop(): Promise<void>;
}

/** `onFull` is told, at each beat, whether Redis refused its write for want of memory; `onBeat`
 * runs beside each beat (a worker's read of Redis's eviction policy). */
export function startHeartbeat(
  redis: Redis,
  keys: RedisKeys,
  ttlMs: number,
  describe: () => WorkerLiveness,
  onError: (error: unknown) => void,
  onFull: (full: boolean) => void,
  onBeat: () => void,
): Heartbeat {
  const key = keys.worker(describe().workerId);
  const beat = async () => {
    onBeat();
    try {
      await redis.set(key, JSON.stringify(describe()), 'PX', ttlMs);
      onFull(false);
    } catch (error) {
      // A full Redis (over its maxmemory, noeviction) refuses the write, but not a new expiry of
      // the key, which takes no memory: the worker, alive, goes on counting as alive (/readyz,
      // /metrics), its figures those of its last write.
      if (writeRefusal(error) === 'full') {
        onFull(true);
        if ((await redis.pexpire(key, ttlMs).catch(() => 0)) === 1) return;
      }
      onError(error);
    }
  };
  void beat();
  const timer = setInterval(beat, Math.max(250, Math.floor(ttlMs / 3)));
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      // Removing the key only says "gone" sooner than its expiry; with Redis away, do not wait.
      await settledWithin(redis.del(key).catch(onError), REMOVE_TIMEOUT_MS);
    },
  };
}
