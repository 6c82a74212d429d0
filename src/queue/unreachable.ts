// Not waiting long on a Redis that is away: "unreachable for this long" as a promise that can be
// called off, a wait on Redis work that gives up after a while, and telling a BullMQ Worker to
// give its connection up before it is disconnected. A closing worker and the API's job client use
// them to stop waiting on a Redis that is not coming back.
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';

const POLL_MS = 200;

/** Closing (a worker, the API's job client) waits this long for an unreachable Redis, then stops
 * waiting on it. */
export const CLOSE_REDIS_AWAY_MS = 5000;

export interface UnreachableWatch {
  /** Resolves once Redis has not answered for `forMs` in a row; never if called off. */
  readonly reached: Promise<void>;
  cancel(): void;
}

/** Watches whether Redis answers on `redis`: away while the connection is not ready, and while a
 * PING sent on it has had no answer. The status alone misses a Redis cut off by the network (a
 * link down, packets dropped by a firewall, a host gone without a reset) or frozen: the connection
 * stays `ready` while nothing comes back (TCP retransmits for up to ~15 min before giving up), so
 * only an answer tells. One PING at a time, every POLL_MS, on the connection the caller's pending
 * work uses: behind that work, so an answer says the work's replies can come too. */
export function watchUnreachable(redis: Redis, forMs: number): UnreachableWatch {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const reached = new Promise<void>((resolve) => {
    let notReadySince: number | undefined;
    /** When the oldest PING not yet answered was sent (a refused one, the connection closed or
     * not writable, answers nothing). */
    let unansweredSince: number | undefined;
    let asking = false;
    const ask = (now: number) => {
      asking = true;
      unansweredSince ??= now;
      redis.ping().then(
        () => {
          asking = false;
          unansweredSince = undefined;
        },
        () => {
          asking = false;
        },
      );
    };
    const check = () => {
      if (cancelled) return;
      const now = Date.now();
      notReadySince = redis.status === 'ready' ? undefined : (notReadySince ?? now);
      if (!asking) ask(now);
      const awaySince = Math.min(notReadySince ?? now, unansweredSince ?? now);
      if (now - awaySince >= forMs) return resolve();
      timer = setTimeout(check, POLL_MS);
    };
    check();
  });
  return {
    reached,
    cancel: () => {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}

/** Waits for `work` (failures included), but no longer than `ms`. */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let giveUp: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => {}), new Promise<void>((resolve) => (giveUp = setTimeout(resolve, ms)))]);
  clearTimeout(giveUp);
}

/** Tells a closing BullMQ Worker that its connection is going, before the caller disconnects it.
 * A job that ends after the disconnect has its completion or failure stored through
 * `retryIfFailed`, which tries again at once, without limit, on a connection error while the
 * Worker closes (BullMQ 5.81: worker.js retryIfFailed skips its delay when closing): each try
 * fails at once ("Connection is closed."), so the retries are a loop of promise continuations
 * that never yields to timers or I/O, and the process spins on one core until it is killed.
 * `handleCompleted`/`handleFailed` skip Redis once the Worker's connection says it is closing;
 * BullMQ sets that only after the Worker's jobs have ended, so we set it ourselves: on a connection
 * handed to the Worker (shared), its close() marks it closing and leaves the client to us. The
 * connection is BullMQ's protected field; the resilience test "closing while Redis loads its data
 * after a restart" fails if this stops working, and this answers false (the caller logs it) if the
 * field has gone. Calling it again does nothing. */
export async function abandonConnection(worker: Worker): Promise<boolean> {
  const { connection } = worker as unknown as { connection?: { close?: () => Promise<void> } };
  if (typeof connection?.close !== 'function') return false;
  await connection.close().catch(() => {});
  return true;
}

/** Resolves once the starts of a BullMQ Worker's or Queue's connections (its own, and a Worker's
 * blocking one) have all settled, or after `ms`. To be awaited before its close when it may still
 * be starting (a start of ours that failed at another step): BullMQ emits a failed start as an
 * 'error' of its connection, whose close has removed every listener by then, so that the emit
 * throws, an unhandled rejection (which ends the process). The connections are BullMQ's protected
 * fields; without them, waitUntilReady (its own connection's, then its blocking one's) alone. */
export async function startsSettled(part: Worker | Queue, ms: number): Promise<void> {
  const { connection, blockingConnection } = part as unknown as { connection?: { client?: Promise<unknown> }; blockingConnection?: { client?: Promise<unknown> } };
  await settledWithin(Promise.allSettled([part.waitUntilReady(), connection?.client, blockingConnection?.client]), ms);
}
