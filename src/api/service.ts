// What the API needs from the job service: the JobClient every front uses, plus the read-only
// figures behind /readyz and /metrics. BullJobClient (src/queue/client.ts) is the implementation.
import type { JobClient } from '../jobs/model.js';
import type { QueueCounts, RedisHealth } from '../queue/client.js';
import type { WorkerLiveness } from '../queue/heartbeat.js';
import type { LiveSocketClaim } from '../queue/live-socket-ledger.js';
import type { JobStats } from '../queue/stats.js';

export interface JobService extends JobClient {
  /** Live tickets (a browser's way onto a live socket where keys are required): issued to a
   * holder for `ttlMs`, redeemed once. */
  issueLiveTicket(holder: string, ttlMs: number): Promise<string>;
  redeemLiveTicket(ticket: string): Promise<string | undefined>;
  /** Live sockets counted across API processes (src/queue/live-socket-ledger.ts). */
  claimLiveSocket(claim: LiveSocketClaim, maximum: number, leaseMs: number): Promise<boolean>;
  releaseLiveSocket(claim: LiveSocketClaim): Promise<void>;
  renewLiveSockets(claims: LiveSocketClaim[], leaseMs: number): Promise<void>;
  /** The API is stopping: every wait under way (`wait`, and a cancel's for its job's end) ends at
   * once, answering as its timeout would (the job as it is now), and every later one after one
   * read. A live session's own wait for its job's end is not one of them. */
  endWaits(): void;
  /** Whether endWaits() was called: a wait that answered an unfinished job ended for the stop. */
  readonly waitsEnded: boolean;
  /** Whether Redis can hold the queue now: reachable, not evicting, taking writes (/readyz), all
   * within `timeoutMs` (unreachable past it). `onPolicy` is told the eviction policy it read. */
  redisHealth(timeoutMs?: number, onPolicy?: (policy: string | undefined) => void): Promise<RedisHealth>;
  /** Each of these fails (QueueUnavailableError) when Redis has not answered within `timeoutMs`
   * (default: the client's own Redis timeout), as /readyz and /metrics bound their answers. */
  counts(timeoutMs?: number): Promise<QueueCounts>;
  /** Stops sending its SCAN once `signal` aborts (or its timeout passes). */
  liveWorkers(timeoutMs?: number, signal?: AbortSignal): Promise<WorkerLiveness[]>;
  stats(timeoutMs?: number): Promise<JobStats>;
}
