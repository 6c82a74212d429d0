// A slot's uid under the machine's bound: the pool's rules for leasing one when every sandbox uid
// of the machine may be leased (uid-leases.ts), and for giving it back once the slot is gone. At
// a shortage, refills pause (said once per spell of shortages), a job's slot takes the uid of an
// idle slot of this owner's, and else fails (PoolError uid EAGAIN, which the executor reports as
// `no_sandbox_uid`, and the worker answers by handing the job back to the queue a few times,
// delayed, before it fails it); a uid whose slot did not go cleanly is withheld. See "Identity
// inside the container" in docs/theory-of-operation.md.
import { performance } from 'node:perf_hooks';
import type { PrepareOccasion } from './keyed-pool.js';
import { SANDBOX_UID } from './root.js';
import { isUidShortage, type UidLeases } from './uid-leases.js';
import { PoolError } from './types.js';

/** Once a lease found every sandbox uid of the machine leased, no slot is prepared ahead for this
 * long: a refill would search the lease files again (1024 agent requests, ~0.1 s) and fail, and
 * the uids this owner's slots give back meanwhile are better left to its jobs' slots. */
const UID_SHORTAGE_REFILL_PAUSE_MS = 10_000;
/** A refill's shortage of uids is reported (onBackgroundError) once per spell of shortages, a
 * spell ending after this long without one (a job's slot's shortage included): the refills paused,
 * it goes on as long as the load does. */
const UID_SHORTAGE_QUIET_MS = 10 * 60_000;

/** What the rules do to the pool's slots (KeyedPool). */
export interface SlotsAtShortage {
  pauseRefills(forMs: number): void;
  /** Destroys an idle slot (for a job of `key`), true once it is gone; false where none is idle. */
  destroyIdle(key: string): Promise<boolean>;
  /** Counts a uid of a slot of `key` withheld (ImagePoolStats.uidsWithheld). */
  countUidWithheld(key: string): void;
}

export interface SlotUidsOptions {
  /** How long refills pause at a shortage (UID_SHORTAGE_REFILL_PAUSE_MS by default). */
  refillPauseMs?: number;
  /** Whether the pool's mount agent died: its locks, the leases' too, went with it. */
  agentLost(): boolean;
}

export class SlotUids {
  /** When a lease last found no uid (a refill's or a job's slot's). */
  private shortageAtMs = Number.NEGATIVE_INFINITY;
  /** Whether the spell of shortages going on (none UID_SHORTAGE_QUIET_MS apart) was reported.
   * Apart from shortageAtMs: a job's slot's shortage, never reported, begins a spell too, and the
   * refill's that follows must still be said. */
  private shortageReported = false;
  /** A refill's shortage of uids that onBackgroundError is not told of: said once already. */
  private readonly quietErrors = new WeakSet<object>();
  private readonly range: string;
  private readonly refillPauseMs: number;

  constructor(
    private readonly uids: UidLeases,
    private readonly slots: SlotsAtShortage,
    private readonly options: SlotUidsOptions,
  ) {
    this.range = `${SANDBOX_UID}-${SANDBOX_UID + uids.count - 1}`;
    this.refillPauseMs = options.refillPauseMs ?? UID_SHORTAGE_REFILL_PAUSE_MS;
  }

  /** Whether `err` is a refill's shortage said already in this spell: not to be reported. */
  saidAlready(err: unknown): boolean {
    return this.quietErrors.has(err as object);
  }

  /** A uid for a slot of `key`. Where every uid of the machine is leased, refills pause; a take's
   * slot (a job waits for it) gets the uid of an idle slot of this owner's, destroyed for it, else
   * fails saying so. */
  async lease(key: string, occasion: PrepareOccasion): Promise<number> {
    // While refills are paused for a shortage, a job's slot does not search the lease files
    // first (1024 agent requests, ~90 ms, which hold up the agent's work for the other jobs'
    // slots, and would most likely find none): it takes a kept uid or an idle slot's at once.
    const searchFirst = occasion === 'ahead' || performance.now() - this.shortageAtMs >= this.refillPauseMs;
    const uid = await this.tryLease(searchFirst);
    if (uid !== undefined) return uid;
    if (searchFirst) this.noteShortage(occasion);
    // Once: where another job's slot took the uid freed meanwhile, that job needed it as much,
    // and destroying idle slot after idle slot for this one would only move the shortage round.
    if (await this.slots.destroyIdle(key)) {
      const freed = await this.tryLease(searchFirst);
      if (freed !== undefined) return freed;
    }
    if (!searchFirst) {
      // Nothing of this owner's to give one up: another worker's slots may have given uids back.
      const found = await this.tryLease(true);
      if (found !== undefined) return found;
      this.noteShortage(occasion);
    }
    throw new PoolError('uid', 'EAGAIN', `no sandbox uid is free: all ${this.uids.count} of this machine (${this.range}) are leased by its workers' slots, and this worker had no idle slot to give one up`);
  }

  /** A slot's uid once its teardown is over: back to the leases where it went cleanly; where it
   * failed, processes may live on under it, and no other slot of any worker gets it (withheld,
   * counted). Nothing where the agent died meanwhile: its locks, this one's too, went with it. */
  async giveBack(key: string, uid: number, clean: boolean): Promise<void> {
    if (this.options.agentLost()) return;
    if (clean) {
      await this.uids.release(uid);
      return;
    }
    this.uids.withhold(uid);
    this.slots.countUidWithheld(key);
  }

  /** A uid, or undefined at a shortage (any other error is thrown). */
  private tryLease(search: boolean): Promise<number | undefined> {
    return this.uids.lease({ search }).catch((err: unknown) => {
      if (!isUidShortage(err)) throw err;
      return undefined;
    });
  }

  /** A lease found every uid leased: refills pause, and a refill's shortage is thrown, said once
   * per spell. */
  private noteShortage(occasion: PrepareOccasion): void {
    this.slots.pauseRefills(this.refillPauseMs);
    const nowMs = performance.now();
    if (nowMs - this.shortageAtMs >= UID_SHORTAGE_QUIET_MS) this.shortageReported = false;
    this.shortageAtMs = nowMs;
    if (occasion !== 'ahead') return;
    const shortage = new PoolError(
      'uid',
      'EAGAIN',
      `all ${this.uids.count} sandbox uids of this machine (${this.range}) are leased by its workers' slots: this pool prepares no slot ahead for ${this.refillPauseMs / 1000} s at a time while they are, and its jobs' slots take the uids of its idle ones (said again only after ${UID_SHORTAGE_QUIET_MS / 60_000} minutes without a shortage)`,
    );
    if (this.shortageReported) this.quietErrors.add(shortage);
    this.shortageReported = true;
    throw shortage;
  }
}
