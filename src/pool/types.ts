// The pool's public contract: what a prepared slot is, how a pool is sized, and the figures it
// exposes for monitoring.

/** Sizing of one image's pool. The pool keeps between `minReady` and `maxReady` slots ready,
 * growing on misses (and on takes that leave none ready or coming) and shrinking after
 * `idleShrinkMs` without a take. */
export interface PoolSizing {
  minReady: number;
  maxReady: number;
  /** A pool that saw no take for this long gives one ready slot back (down to `minReady`). */
  idleShrinkMs: number;
}

/** Figures for one image's pool: flat numbers, as monitoring reads them. */
export interface ImagePoolStats {
  /** Slots prepared and waiting. */
  ready: number;
  /** Slots taken and not yet released. */
  inUse: number;
  /** Slots being prepared (refills and misses). */
  preparing: number;
  /** Used slots waiting for their teardown, which yields to running jobs (at most ~0.1 s). */
  retiring: number;
  /** How many slots the pool currently aims to keep ready. */
  target: number;
  hits: number;
  misses: number;
  /** Ready slots found unusable at their take (a container whose init was killed while it
   * waited), torn down instead of handed out. */
  discarded: number;
  /** Ready slots destroyed before their time for a job of another key, whose slot could be made
   * only with their uid: every one of the machine's sandbox uids was leased (uid-leases.ts). */
  evicted: number;
  /** Uids of this key's slots whose teardown failed, or whose root would not go after their
   * container's prepare failed (their processes may live on), kept leased by this worker and never
   * given to another slot, until it exits (uid-leases.ts, withhold; slot-uids.ts). */
  uidsWithheld: number;
  /** Slots prepared successfully so far. */
  prepared: number;
  destroyed: number;
  prepareFailures: number;
  /** Wall time of the `prepared` preparations, summed (mean = prepareMsTotal / prepared). */
  prepareMsTotal: number;
  prepareMsLast: number;
  prepareMsMax: number;
}

export interface PoolStats {
  images: Record<string, ImagePoolStats>;
}

/** A pool operation that could not be done; `code` is an errno name where the kernel said no. */
export class PoolError extends Error {
  override readonly name = 'PoolError';
  constructor(
    readonly op: string,
    readonly code: string,
    message: string,
    readonly errno = 0,
  ) {
    super(message);
  }
}
