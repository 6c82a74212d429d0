// A worker's liveness in Redis: one key per worker process, rewritten every third of its TTL.
// The key expiring is the worker's death notice, so /readyz needs no clock shared between
// machines — Redis's own expiry decides.
import type { Redis } from 'ioredis';
import type { WorkerLiveness } from './client.js';
import type { RedisKeys } from './keys.js';
import { settledWithin } from './unreachable.js';

/** Longest stop() waits for Redis to remove the liveness key (it expires by itself anyway). */
const REMOVE_TIMEOUT_MS = 2000;

export interface Heartbeat {
  stop(): Promise<void>;
}

export function startHeartbeat(
  redis: Redis,
  keys: RedisKeys,
  ttlMs: number,
  describe: () => WorkerLiveness,
  onError: (error: unknown) => void,
): Heartbeat {
  const key = keys.worker(describe().workerId);
  const beat = () => redis.set(key, JSON.stringify(describe()), 'PX', ttlMs).catch(onError);
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
