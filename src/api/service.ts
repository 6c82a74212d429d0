// What the API needs from the job service: the JobClient every front uses, plus the read-only
// figures behind /readyz and /metrics. BullJobClient (src/queue/client.ts) is the implementation.
import type { JobClient } from '../jobs/model.js';
import type { QueueCounts } from '../queue/client.js';
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
  ping(): Promise<void>;
  counts(): Promise<QueueCounts>;
  liveWorkers(): Promise<WorkerLiveness[]>;
  stats(): Promise<JobStats>;
}
