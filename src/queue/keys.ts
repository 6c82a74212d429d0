// Every Redis name cellblock uses besides BullMQ's own, in one place, under the deployment's prefix.
// BullMQ keys its queue as `<prefix>:<queue>:*`; ours sit beside them as `<prefix>:cb:*`.

/** The one BullMQ queue all submissions go through. */
export const QUEUE_NAME = 'jobs';

export interface RedisKeys {
  /** Set when a job is cancelled; a worker checks it before running. Expires with the results. */
  cancelled(jobId: string): string;
  /** Hash: a finished job's result too large to travel in BullMQ's return value (result-store.ts),
   * under the job's id and creation time (an id an Idempotency-Key names may come back for a new
   * job) and the attempt that stored it (a worker that lost the job may store its own). Expires
   * with the job's record. */
  result(jobId: string, createdAtMs: number, attempt: number): string;
  /** Pub/sub channel on which the API tells every worker to abort a running job. */
  cancelChannel: string;
  /** One key per live worker process; its TTL is the liveness deadline. */
  worker(workerId: string): string;
  workerPattern: string;
  /** Hash: finished jobs counted by verdict (and `failed`), for /metrics. */
  verdictCounts: string;
  /** Hash: job latency histogram (bucket upper bounds in ms, `sum`, `count`), for /metrics. */
  latencyHistogram: string;
  /** String: the deployment's secret in idempotency keys' job ids (idempotency.ts, readIdempotencySecret). */
  idempotencySecret: string;
  /** Pub/sub channel of a live job's events, from its worker to the API that holds its session. */
  liveEvents(jobId: string): string;
  /** Pub/sub channel of a live job's stdin, from the API to its worker. */
  liveInput(jobId: string): string;
  /** Counter: a live job's takes that their worker handed back unrun, its session told nothing
   * (worker.ts, handBackUnrun): those runs took none of its client's input. */
  liveUnrunTakes(jobId: string): string;
  /** Counter: the takes of a job whose sandbox met a host shortage, no sandbox uid free or no file
   * descriptor, either counting (worker.ts, handBackAtHostShortage): past a few, it fails instead
   * of going back to the queue. Under the job's creation too (BullMQ's timestamp, ms): a job made
   * again under the same id (an Idempotency-Key whose job expired) starts from none, not from the
   * count of the one before, kept a day. */
  hostShortageTakes(jobId: string, createdMs: number): string;
  /** String: a live ticket's holder (client.ts, issueLiveTicket), under the ticket's digest;
   * its TTL is the ticket's lifetime. */
  liveTicket(ticketDigest: string): string;
  /** String: held (with a TTL) by the API process whose cleaner removes the finished jobs older
   * than `resultTtlSeconds` now (result-cleaner.ts), so that one clean goes through for all of
   * them. One per TTL: an API configured with another TTL (a change being rolled out) cleans by
   * its own. */
  resultClean(resultTtlSeconds: number): string;
  /** String: held (with a TTL) by the API process whose cleaner removes the sent notifications
   * older than an hour now (notification-queue.ts, result-cleaner.ts), as resultClean is. */
  sentNotificationsClean: string;
  /** Sorted set: a client's live sockets on every API process (live-socket-ledger.ts), under
   * the client's digest. */
  liveSockets(clientDigest: string): string;
  /** String, expiring: written by each readiness check (client.ts, redisHealth), to learn
   * whether Redis takes writes. */
  readinessProbe: string;
}

export function redisKeys(prefix: string): RedisKeys {
  const base = `${prefix}:cb`;
  return {
    cancelled: (jobId) => `${base}:cancelled:${jobId}`,
    result: (jobId, createdAtMs, attempt) => `${base}:result:${jobId}:${createdAtMs}:${attempt}`,
    cancelChannel: `${base}:cancel`,
    worker: (workerId) => `${base}:worker:${workerId}`,
    workerPattern: `${base}:worker:*`,
    verdictCounts: `${base}:stats:verdicts`,
    latencyHistogram: `${base}:stats:latency`,
    idempotencySecret: `${base}:idempotency-secret`,
    liveEvents: (jobId) => `${base}:live:${jobId}:events`,
    liveInput: (jobId) => `${base}:live:${jobId}:input`,
    liveUnrunTakes: (jobId) => `${base}:live:${jobId}:unrun-takes`,
    hostShortageTakes: (jobId, createdMs) => `${base}:host-shortages:${jobId}:${createdMs}`,
    liveTicket: (ticketDigest) => `${base}:live-ticket:${ticketDigest}`,
    resultClean: (resultTtlSeconds) => `${base}:result-clean:${resultTtlSeconds}`,
    sentNotificationsClean: `${base}:sent-notifications-clean`,
    liveSockets: (clientDigest) => `${base}:live-sockets:${clientDigest}`,
    readinessProbe: `${base}:readiness-probe`,
  };
}
