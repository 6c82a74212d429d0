// A worker's ear for cancel requests: the API publishes the id of a job it could not take out of
// the queue (a worker had it already) on one channel, and every worker hears it. The worker that
// runs the job aborts it; the others remember the id for a while, since the message can come
// before this worker has registered a job it has just taken (the take and the message travel on
// different connections). Remembering, plus knowing that the subscription has not had a break
// since the job was taken, is what lets a first attempt start without asking Redis for the cancel
// marker (a round trip on every job's critical path).
import type { Redis } from 'ioredis';

/** How long a cancel heard for a job not running here is remembered. A job taken before its
 * cancel message came is registered within milliseconds; this bounds a stalled event loop. */
const HEARD_CANCEL_MEMORY_MS = 10 * 60_000;
/** At most this many remembered cancels (the oldest go first): memory stays bounded whatever arrives. */
const HEARD_CANCEL_MAX = 10_000;

export interface CancelWatch {
  /** A cancel for `jobId` was heard and not yet claimed by a running job. */
  heard(jobId: string): boolean;
  /** The subscription has been up without a break since at or before `epochMs` (by this process's
   * clock, Date.now, which the worker's takes' processedOn are stamped by): every message published
   * after that instant has been heard. */
  listeningSince(epochMs: number): boolean;
}

/** Subscribes `subscriber` (a connection of its own) to `channel`; `abortRunning` is told every
 * heard id and returns whether a job running here took it. `resubscribed` is called each time the
 * subscription holds again after a break: the messages published during it are lost, and jobs
 * running here since before it must be looked up (their cancel markers). */
export async function startCancelWatch(
  subscriber: Redis,
  channel: string,
  abortRunning: (jobId: string) => boolean,
  resubscribed: () => void = () => {},
): Promise<CancelWatch> {
  const heardAt = new Map<string, number>();
  /** When the current subscription was confirmed; Infinity while there is none. */
  let subscribedAtMs = Infinity;
  /** Bumped on every break, so that a confirmation from before the break is not believed. */
  let connection = 0;

  const confirm = async () => {
    const current = connection;
    await subscriber.subscribe(channel);
    if (current !== connection || subscriber.status !== 'ready') return;
    subscribedAtMs = Date.now();
    if (current > 0) resubscribed();
  };
  subscriber.on('close', () => {
    connection++;
    subscribedAtMs = Infinity;
  });
  // ioredis resubscribes by itself after a reconnect; our own SUBSCRIBE (idempotent) tells us when it holds.
  subscriber.on('ready', () => void confirm().catch(() => {}));
  subscriber.on('message', (_channel: string, jobId: string) => {
    if (abortRunning(jobId)) return;
    const nowMs = Date.now();
    heardAt.delete(jobId);
    heardAt.set(jobId, nowMs);
    // Oldest first (insertion order): drop the expired and the excess.
    for (const [id, atMs] of heardAt) {
      if (nowMs - atMs < HEARD_CANCEL_MEMORY_MS && heardAt.size <= HEARD_CANCEL_MAX) break;
      heardAt.delete(id);
    }
  });
  await confirm();

  return {
    heard: (jobId) => heardAt.delete(jobId),
    listeningSince: (epochMs) => subscribedAtMs <= epochMs,
  };
}
