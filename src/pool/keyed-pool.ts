// A pool of single-use slots per key (an image name). Slots are prepared ahead of time, each is
// taken by exactly one job and then destroyed and replaced in the background. A take that finds
// none ready prepares one on the spot (a miss) and raises that key's target, as does a take that
// leaves none ready or coming (the next would miss), so the pool follows demand between minReady
// and maxReady; a key without takes for idleShrinkMs gives slots back.
// Takes are LIFO: the slot prepared last is taken first (its memory, init's stack and the kernel
// objects behind it are the likeliest still in cache), and shrinking gives back the oldest.
//
// Upkeep (destroying used slots, refilling) yields to running jobs: its work — a used
// container's namespaces torn down, unmounts, cgroup removals, a new container's clone and
// mounts — takes CPU, and on a small machine it ran on the cores of the jobs that followed,
// such as a submission's next test or its run after the compile (`npm run bench:pool`, python
// hello in bursts of three: 1.28x and 1.26x of a bare run with each job's upkeep running beside
// the next, 1.18x and 1.18x with it after the burst; 1.15x, 1.16x -> 1.10x, 1.12x once the used
// containers' own teardown came with it too, d7074b3).
// While a job of this pool runs, a used slot waits (at most UPKEEP_POSTPONE_MAX_MS, and no more
// than maxReady of them per key), and so does a refill, unless the key has fewer slots ready or
// coming than it ran jobs at once lately: that much is demand, and is refilled at once. Under a
// steady stream the same work is done, later: only bursts that the ready slots cover run
// without it.
import { performance } from 'node:perf_hooks';
import type { ImagePoolStats, PoolSizing } from './types.js';
import { PoolError } from './types.js';

/** Why a slot is prepared: ahead of time (a refill), or on the spot for a take that found none
 * ready, with its job waiting. */
export type PrepareOccasion = 'ahead' | 'onTheSpot';

export interface SlotFactory<T> {
  prepare(key: string, occasion: PrepareOccasion): Promise<T>;
  destroy(slot: T): Promise<void>;
  /** Whether a ready slot can still serve a job; one that cannot is torn down at its take, and the
   * take goes on to the next. Absent: every slot can. */
  usable?(slot: T): boolean;
}

export interface KeyedPoolOptions {
  sizing: (key: string) => PoolSizing;
  /** Background preparations running at once, over all keys (misses are not counted). */
  refillConcurrency: number;
  /** After a failed background preparation, that key is not refilled for this long. */
  failureBackoffMs: number;
  /** Called with errors of background work (refill, destroy), which no caller waits for. */
  onBackgroundError?: (err: unknown, key: string) => void;
  /** At most `slots` slots ready or prepared ahead at once over the keys `counts` names, whatever
   * their own maxReady: what each such slot holds of a bounded resource (a container's
   * descriptors, within the worker's open files limit) must fit. Slots prepared for a take are a
   * job's, never refused. Absent: no bound but each key's. */
  readyCap?: { slots: number; counts(key: string): boolean };
}

const HOUSEKEEPING_TICK_MS = 250;
/** A released slot's teardown and its replacement wait this long: both take CPU (unmounts, a new
 * container's clone and mounts) on a machine whose cores the finished job's result still has to
 * cross (worker → Redis → API → client, ~3-5 ms when the machine is idle). */
const RELEASE_DELAY_MS = 10;
/** The longest a used slot's teardown, or a refill, waits for the pool's jobs to end. */
const UPKEEP_POSTPONE_MAX_MS = 100;

interface RetiredSlot {
  slot: unknown;
  releasedAtMs: number;
}

interface KeyState {
  key: string;
  sizing: PoolSizing;
  ready: unknown[];
  /** Used slots waiting for their teardown, oldest first. */
  retired: RetiredSlot[];
  inUse: number;
  refilling: number;
  preparingOnTheSpot: number;
  target: number;
  /** The key's last take, or its creation before any. */
  lastTakeAtMs: number;
  /** When the key's idle period began: its last take, its creation or its last shrink step
   * (shrinkIdle takes one step per idleShrinkMs of it). */
  idleSinceMs: number;
  backoffUntilMs: number;
  /** When a refill this key wants was first put off for running jobs; undefined when none is. */
  refillPostponedSinceMs: number | undefined;
  /** The most jobs of this key at once lately (within UPKEEP_POSTPONE_MAX_MS of peakJobsAtMs). */
  peakJobs: number;
  peakJobsAtMs: number;
  stats: Omit<ImagePoolStats, 'ready' | 'inUse' | 'preparing' | 'retiring' | 'target'>;
}

export class KeyedPool<T> {
  private readonly keys = new Map<string, KeyState>();
  private refillsRunning = 0;
  private readonly background = new Set<Promise<void>>();
  private closed = false;
  /** stopRefills() was called: no slot is prepared ahead from then on. */
  private refillsStopped = false;
  /** pauseRefills(): no slot is prepared ahead before this. */
  private refillsPausedUntilMs = 0;
  private readonly shrinkTimer: NodeJS.Timeout;
  private upkeepTimer: NodeJS.Timeout | undefined;
  private upkeepAtMs = Number.POSITIVE_INFINITY;

  constructor(
    private readonly factory: SlotFactory<T>,
    private readonly options: KeyedPoolOptions,
  ) {
    // The housekeeping tick: idle shrinking, and refills that waited out a failure backoff.
    this.shrinkTimer = setInterval(() => {
      this.shrinkIdle();
      this.refill();
    }, HOUSEKEEPING_TICK_MS);
    this.shrinkTimer.unref();
  }

  /** Starts keeping `key` ready (at its minReady) before the first take. */
  warm(key: string): void {
    this.state(key);
    this.refill();
  }

  /** No slot is prepared ahead from now on: the factory can make none (the pool's mount agent
   * died), and refills failing every failureBackoffMs would only add noise. Used slots are still
   * destroyed, and close() works as before. */
  stopRefills(): void {
    this.refillsStopped = true;
  }

  /** No slot is prepared ahead for `forMs` (refills under way go on): the factory found what a
   * slot needs used up (the machine's sandbox uids), and the slots given back meanwhile are
   * better left to jobs. The housekeeping tick resumes them (and brings the targets destroyIdle
   * lowered back to minReady). */
  pauseRefills(forMs: number): void {
    this.refillsPausedUntilMs = Math.max(this.refillsPausedUntilMs, performance.now() + forMs);
  }

  /** For a take of `key` whose slot could not be prepared for want of what idle slots hold (a
   * uid; the caller has paused refills): destroys one slot no job holds, and resolves once it is
   * gone (true), or at once when there is none (false). A used slot waiting for its teardown goes
   * first (it goes anyway); else the oldest ready slot (takes are LIFO) of the other key whose
   * last take (or creation, before any) is oldest. Its target drops so that it is not refilled
   * while refills are paused, and comes back to minReady at least when they resume (refill). */
  async destroyIdle(key: string): Promise<boolean> {
    if (this.closed) return false;
    let victim: { state: KeyState; slot: T } | undefined;
    for (const state of this.keys.values()) {
      const retired = state.retired.shift();
      if (retired !== undefined) {
        victim = { state, slot: retired.slot as T };
        break;
      }
    }
    if (!victim) {
      let idlest: KeyState | undefined;
      for (const state of this.keys.values()) {
        if (state.key !== key && state.ready.length > 0 && (!idlest || state.lastTakeAtMs < idlest.lastTakeAtMs)) idlest = state;
      }
      if (!idlest) return false;
      victim = { state: idlest, slot: idlest.ready.shift() as T };
      idlest.stats.evicted++;
      idlest.target = Math.min(idlest.target, idlest.ready.length + idlest.refilling);
    }
    await this.destroyInBackground(victim.state, victim.slot);
    return true;
  }

  /** A slot for one job. Never waits for a refill: a miss prepares one on the spot. */
  async take(key: string): Promise<T> {
    if (this.closed) throw new PoolError('take', 'ECLOSED', 'pool is closed');
    const state = this.state(key);
    state.lastTakeAtMs = performance.now();
    state.idleSinceMs = state.lastTakeAtMs;
    const slot = this.popUsable(state);
    if (slot !== undefined) {
      // No refill here: preparing runs JS-thread work (cgroup files, the engine's clone) that
      // would delay this very job. The slot is replaced when it is released.
      state.stats.hits++;
      state.inUse++;
      // Nothing ready or coming: the next take would miss. The target grows as for a miss, so
      // that jobs coming one after another (a submission's tests, a burst) keep a spare, and the
      // refill waits for them to end (refillPostponed) instead of running beside the next one.
      if (state.ready.length + state.refilling === 0) this.raiseTarget(state);
      this.noteJobs(state, state.lastTakeAtMs);
      return slot;
    }
    state.stats.misses++;
    this.raiseTarget(state);
    state.preparingOnTheSpot++;
    this.noteJobs(state, state.lastTakeAtMs);
    try {
      const prepared = await this.prepareTimed(state, 'onTheSpot');
      state.inUse++;
      return prepared;
    } finally {
      state.preparingOnTheSpot--;
    }
  }

  /** The last ready slot that can serve a job; those that cannot go to the retired, for upkeep. */
  private popUsable(state: KeyState): T | undefined {
    for (;;) {
      const slot = state.ready.pop() as T | undefined;
      if (slot === undefined || this.factory.usable === undefined || this.factory.usable(slot)) return slot;
      state.stats.discarded++;
      this.retire(state, slot, state.lastTakeAtMs);
    }
  }

  /** A slot done with (used, or found unusable) waits for its teardown in upkeep. */
  private retire(state: KeyState, slot: T, nowMs: number): void {
    state.retired.push({ slot, releasedAtMs: nowMs });
    // After the caller's result is on its way: teardown and refill run on the JS thread too.
    this.scheduleUpkeep(nowMs + RELEASE_DELAY_MS);
  }

  /** Gives a used slot back: it is destroyed (never reused) and replaced, off the caller's path. */
  release(key: string, slot: T): void {
    const state = this.state(key);
    state.inUse--;
    this.retire(state, slot, performance.now());
  }

  /** The caller withheld the uid of a slot of `key` (pool.ts, slot-uids.ts): counted with the
   * key's other figures. */
  countUidWithheld(key: string): void {
    this.state(key).stats.uidsWithheld++;
  }

  stats(): { images: Record<string, ImagePoolStats> } {
    const images: Record<string, ImagePoolStats> = {};
    for (const s of this.keys.values()) {
      images[s.key] = {
        ready: s.ready.length,
        inUse: s.inUse,
        preparing: s.refilling + s.preparingOnTheSpot,
        retiring: s.retired.length,
        target: s.target,
        ...s.stats,
      };
    }
    return { images };
  }

  /** Destroys every ready slot and waits for background work. Slots in use must be released. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.shrinkTimer);
    clearTimeout(this.upkeepTimer);
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    for (const state of this.keys.values()) {
      for (const { slot } of state.retired.splice(0)) this.destroyInBackground(state, slot as T);
      for (const slot of state.ready.splice(0)) this.destroyInBackground(state, slot as T);
    }
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private state(key: string): KeyState {
    let state = this.keys.get(key);
    if (!state) {
      const sizing = this.options.sizing(key);
      if (!(sizing.minReady >= 0 && sizing.maxReady >= sizing.minReady)) {
        throw new PoolError('sizing', 'EINVAL', `pool sizing for ${key}: need 0 <= minReady <= maxReady`);
      }
      state = {
        key,
        sizing,
        ready: [],
        retired: [],
        inUse: 0,
        refilling: 0,
        preparingOnTheSpot: 0,
        target: sizing.minReady,
        lastTakeAtMs: performance.now(),
        idleSinceMs: performance.now(),
        backoffUntilMs: 0,
        refillPostponedSinceMs: undefined,
        peakJobs: 0,
        peakJobsAtMs: 0,
        stats: { hits: 0, misses: 0, discarded: 0, evicted: 0, prepared: 0, destroyed: 0, prepareFailures: 0, prepareMsTotal: 0, prepareMsLast: 0, prepareMsMax: 0, uidsWithheld: 0 },
      };
      this.keys.set(key, state);
    }
    return state;
  }

  private async prepareTimed(state: KeyState, occasion: PrepareOccasion): Promise<T> {
    const startMs = performance.now();
    try {
      const slot = await this.factory.prepare(state.key, occasion);
      const ms = performance.now() - startMs;
      const stats = state.stats;
      stats.prepared++;
      stats.prepareMsTotal += ms;
      stats.prepareMsLast = ms;
      stats.prepareMsMax = Math.max(stats.prepareMsMax, ms);
      return slot;
    } catch (err) {
      state.stats.prepareFailures++;
      throw err;
    }
  }

  /** Jobs of this pool holding a slot or waiting for one prepared on the spot. */
  private jobsRunning(): number {
    let jobs = 0;
    for (const state of this.keys.values()) jobs += state.inUse + state.preparingOnTheSpot;
    return jobs;
  }

  /** Runs upkeep at `atMs` (or sooner, if already due sooner). */
  private scheduleUpkeep(atMs: number): void {
    if (this.closed || atMs >= this.upkeepAtMs) return;
    clearTimeout(this.upkeepTimer);
    this.upkeepAtMs = atMs;
    this.upkeepTimer = setTimeout(() => {
      this.upkeepTimer = undefined;
      this.upkeepAtMs = Number.POSITIVE_INFINITY;
      this.destroyRetired();
      this.refill();
    }, Math.max(0, atMs - performance.now()));
  }

  /** Destroys the used slots released at least RELEASE_DELAY_MS ago; while jobs run, only those
   * that waited UPKEEP_POSTPONE_MAX_MS or are beyond the key's maxReady. The rest wait for the
   * next upkeep. */
  private destroyRetired(): void {
    const nowMs = performance.now();
    const busy = this.jobsRunning() > 0;
    for (const state of this.keys.values()) {
      while (state.retired.length > 0) {
        const oldest = state.retired[0]!;
        const overCap = state.retired.length > state.sizing.maxReady;
        const dueAtMs = oldest.releasedAtMs + (busy && !overCap ? UPKEEP_POSTPONE_MAX_MS : RELEASE_DELAY_MS);
        if (nowMs < dueAtMs) {
          this.scheduleUpkeep(dueAtMs);
          break;
        }
        state.retired.shift();
        this.destroyInBackground(state, oldest.slot as T);
      }
    }
  }

  /** Demand showed at a take (a miss, or nothing left ready or coming): one more slot ready, up to
   * maxReady. */
  private raiseTarget(state: KeyState): void {
    state.target = Math.min(state.sizing.maxReady, state.target + 1);
  }

  /** At a take: keeps the key's peak of jobs at once (the demand refillPostponed honours). */
  private noteJobs(state: KeyState, nowMs: number): void {
    const jobs = state.inUse + state.preparingOnTheSpot;
    if (jobs >= state.peakJobs || nowMs - state.peakJobsAtMs >= UPKEEP_POSTPONE_MAX_MS) {
      state.peakJobs = jobs;
      state.peakJobsAtMs = nowMs;
    }
  }

  /** Whether a refill that `state` wants waits for the running jobs to end: not when the key has
   * fewer slots ready or coming than it ran jobs at once lately (demand: a closed loop's jobs
   * come and go, and a dip between two of them is no time to wait), nor once it has waited
   * UPKEEP_POSTPONE_MAX_MS. */
  private refillPostponed(state: KeyState, busy: boolean, nowMs: number): boolean {
    const recentPeak = nowMs - state.peakJobsAtMs < UPKEEP_POSTPONE_MAX_MS ? state.peakJobs : 0;
    const demand = Math.max(state.inUse + state.preparingOnTheSpot, recentPeak);
    if (!busy || state.ready.length + state.refilling < demand) return false;
    state.refillPostponedSinceMs ??= nowMs;
    const dueAtMs = state.refillPostponedSinceMs + UPKEEP_POSTPONE_MAX_MS;
    if (nowMs >= dueAtMs) return false;
    this.scheduleUpkeep(dueAtMs);
    return true;
  }

  private refill(): void {
    const nowMs = performance.now();
    if (this.closed || this.refillsStopped || nowMs < this.refillsPausedUntilMs) return;
    const busy = this.jobsRunning() > 0;
    // The slots ready or coming of the keys the readyCap counts: summed once here, then one more
    // as each refill of such a key starts (nothing else changes them before this returns), not
    // summed over every key again for each slot a key lacks.
    const cap = this.options.readyCap;
    const capSlots = cap?.slots ?? Number.POSITIVE_INFINITY;
    let capped = 0;
    if (cap) for (const state of this.keys.values()) if (cap.counts(state.key)) capped += state.ready.length + state.refilling;
    for (const state of this.keys.values()) {
      const counted = cap?.counts(state.key) ?? false;
      // An eviction's lowering (destroyIdle) lasts while refills are paused, not for good: only a
      // miss would raise the target again, and a key kept below its minReady misses needlessly.
      state.target = Math.max(state.target, state.sizing.minReady);
      while (
        this.refillsRunning < this.options.refillConcurrency &&
        state.ready.length + state.refilling < state.target &&
        nowMs >= state.backoffUntilMs &&
        (!counted || capped < capSlots) &&
        !this.refillPostponed(state, busy, nowMs)
      ) {
        if (counted) capped++;
        state.refilling++;
        this.refillsRunning++;
        this.track(
          this.prepareTimed(state, 'ahead').then(
            (slot) => {
              if (this.closed || state.ready.length >= state.target) this.destroyInBackground(state, slot);
              else state.ready.push(slot);
            },
            (err: unknown) => {
              state.backoffUntilMs = performance.now() + this.options.failureBackoffMs;
              this.options.onBackgroundError?.(err, state.key);
            },
          ).finally(() => {
            state.refilling--;
            this.refillsRunning--;
            this.refill();
          }),
        );
      }
      if (state.ready.length + state.refilling >= state.target) state.refillPostponedSinceMs = undefined;
    }
  }

  /** Settles (never rejects) once the slot is destroyed; its failure goes to onBackgroundError. */
  private destroyInBackground(state: KeyState, slot: T): Promise<void> {
    const destroyed = this.factory.destroy(slot).then(
      () => {
        state.stats.destroyed++;
      },
      (err: unknown) => this.options.onBackgroundError?.(err, state.key),
    );
    this.track(destroyed);
    return destroyed;
  }

  private shrinkIdle(): void {
    const nowMs = performance.now();
    for (const state of this.keys.values()) {
      if (state.target > state.sizing.minReady && nowMs - state.idleSinceMs >= state.sizing.idleShrinkMs) {
        state.target--;
        state.idleSinceMs = nowMs; // one step per idle period
        if (state.ready.length > state.target) this.destroyInBackground(state, state.ready.shift() as T);
      }
    }
  }

  private track(work: Promise<void>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }
}
