// A pool of single-use slots per key (an image name). Slots are prepared ahead of time, each is
// taken by exactly one job and then destroyed and replaced in the background. A take that finds
// none ready prepares one on the spot (a miss) and raises that key's target, so the pool follows
// demand between minReady and maxReady; a key without takes for idleShrinkMs gives slots back.
// Takes are LIFO: the slot prepared last is taken first (its memory, init's stack and the kernel
// objects behind it are the likeliest still in cache), and shrinking gives back the oldest.
import { performance } from 'node:perf_hooks';
import type { ImagePoolStats, PoolSizing, PoolStats } from './types.js';
import { PoolError } from './types.js';

export interface SlotFactory<T> {
  prepare(key: string): Promise<T>;
  destroy(slot: T): Promise<void>;
}

export interface KeyedPoolOptions {
  sizing: (key: string) => PoolSizing;
  /** Background preparations running at once, over all keys (misses are not counted). */
  refillConcurrency: number;
  /** After a failed background preparation, that key is not refilled for this long. */
  failureBackoffMs: number;
  /** Called with errors of background work (refill, destroy), which no caller waits for. */
  onBackgroundError?: (err: unknown, key: string) => void;
}

const HOUSEKEEPING_TICK_MS = 250;
/** A released slot's teardown and its replacement wait this long: both take CPU (unmounts, a new
 * container's clone and mounts) on a machine whose cores the finished job's result still has to
 * cross (worker → Redis → API → client, ~3-5 ms when the machine is idle). */
const RELEASE_DELAY_MS = 10;

interface KeyState {
  key: string;
  sizing: PoolSizing;
  ready: unknown[];
  inUse: number;
  refilling: number;
  preparingOnTheSpot: number;
  target: number;
  lastTakeAtMs: number;
  backoffUntilMs: number;
  stats: Omit<ImagePoolStats, 'ready' | 'inUse' | 'preparing' | 'target'>;
}

export class KeyedPool<T> {
  private readonly keys = new Map<string, KeyState>();
  private refillsRunning = 0;
  private readonly background = new Set<Promise<void>>();
  private closed = false;
  private readonly shrinkTimer: NodeJS.Timeout;

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

  /** A slot for one job. Never waits for a refill: a miss prepares one on the spot. */
  async take(key: string): Promise<T> {
    if (this.closed) throw new PoolError('take', 'ECLOSED', 'pool is closed');
    const state = this.state(key);
    state.lastTakeAtMs = performance.now();
    const slot = state.ready.pop() as T | undefined;
    if (slot !== undefined) {
      // No refill here: preparing runs JS-thread work (cgroup files, the engine's clone) that
      // would delay this very job. The slot is replaced when it is released.
      state.stats.hits++;
      state.inUse++;
      return slot;
    }
    state.stats.misses++;
    state.target = Math.min(state.sizing.maxReady, state.target + 1);
    state.preparingOnTheSpot++;
    try {
      const prepared = await this.prepareTimed(state);
      state.inUse++;
      return prepared;
    } finally {
      state.preparingOnTheSpot--;
    }
  }

  /** Gives a used slot back: it is destroyed (never reused) and replaced, off the caller's path. */
  release(key: string, slot: T): void {
    const state = this.state(key);
    state.inUse--;
    // After the caller's result is on its way: teardown and refill run on the JS thread too.
    this.track(
      new Promise<void>((resolve) =>
        setTimeout(() => {
          this.destroyInBackground(state, slot);
          this.refill();
          resolve();
        }, RELEASE_DELAY_MS),
      ),
    );
  }

  stats(): PoolStats {
    const images: PoolStats['images'] = {};
    for (const s of this.keys.values()) {
      images[s.key] = {
        ready: s.ready.length,
        inUse: s.inUse,
        preparing: s.refilling + s.preparingOnTheSpot,
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
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    for (const state of this.keys.values()) {
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
        inUse: 0,
        refilling: 0,
        preparingOnTheSpot: 0,
        target: sizing.minReady,
        lastTakeAtMs: performance.now(),
        backoffUntilMs: 0,
        stats: { hits: 0, misses: 0, prepared: 0, destroyed: 0, prepareFailures: 0, prepareMsTotal: 0, prepareMsLast: 0, prepareMsMax: 0 },
      };
      this.keys.set(key, state);
    }
    return state;
  }

  private async prepareTimed(state: KeyState): Promise<T> {
    const startMs = performance.now();
    try {
      const slot = await this.factory.prepare(state.key);
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

  private refill(): void {
    if (this.closed) return;
    const nowMs = performance.now();
    for (const state of this.keys.values()) {
      while (
        this.refillsRunning < this.options.refillConcurrency &&
        state.ready.length + state.refilling < state.target &&
        nowMs >= state.backoffUntilMs
      ) {
        state.refilling++;
        this.refillsRunning++;
        this.track(
          this.prepareTimed(state).then(
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
    }
  }

  private destroyInBackground(state: KeyState, slot: T): void {
    this.track(
      this.factory.destroy(slot).then(
        () => {
          state.stats.destroyed++;
        },
        (err: unknown) => this.options.onBackgroundError?.(err, state.key),
      ),
    );
  }

  private shrinkIdle(): void {
    const nowMs = performance.now();
    for (const state of this.keys.values()) {
      if (state.target > state.sizing.minReady && nowMs - state.lastTakeAtMs >= state.sizing.idleShrinkMs) {
        state.target--;
        state.lastTakeAtMs = nowMs; // one step per idle period
        if (state.ready.length > state.target) this.destroyInBackground(state, state.ready.shift() as T);
      }
    }
  }

  private track(work: Promise<void>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }
}
