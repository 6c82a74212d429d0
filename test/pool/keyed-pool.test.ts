// KeyedPool's order on its own, with a factory that hands out numbered slots: no kernel needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedPool, type PrepareOccasion } from '../../src/pool/keyed-pool.js';
import { until } from '../helpers/until.js';

function numberedFactory() {
  let next = 0;
  const destroyed: number[] = [];
  return {
    destroyed,
    factory: {
      prepare: async () => ++next,
      destroy: async (slot: number) => {
        destroyed.push(slot);
      },
    },
  };
}

test('takes are LIFO: the slot prepared last is taken first', async () => {
  const { factory } = numberedFactory();
  const pool = new KeyedPool<number>(factory, {
    sizing: () => ({ minReady: 3, maxReady: 3, idleShrinkMs: 60_000 }),
    refillConcurrency: 1,
    failureBackoffMs: 1000,
  });
  try {
    pool.warm('k');
    await until(() => pool.stats().images.k!.ready === 3, 5000, 5, 'three slots ready');
    // Prepared one at a time (refillConcurrency 1): 1, 2, 3 in that order.
    assert.equal(await pool.take('k'), 3);
    assert.equal(await pool.take('k'), 2);
    assert.equal(await pool.take('k'), 1);
  } finally {
    await pool.close();
  }
});

test('a ready slot that can no longer serve a job is torn down at its take, and the next one taken', async () => {
  const { factory, destroyed } = numberedFactory();
  const unusable = new Set([3, 2]);
  let noneUsable = false;
  const onTheSpot = new Set<number>();
  const pool = new KeyedPool<number>(
    {
      ...factory,
      prepare: async (key: string, occasion: PrepareOccasion) => {
        const slot = await factory.prepare();
        if (occasion === 'onTheSpot') onTheSpot.add(slot);
        return slot;
      },
      usable: (slot) => !noneUsable && !unusable.has(slot),
    },
    { sizing: () => ({ minReady: 3, maxReady: 3, idleShrinkMs: 60_000 }), refillConcurrency: 1, failureBackoffMs: 1000 },
  );
  try {
    pool.warm('k');
    await until(() => pool.stats().images.k!.ready === 3, 5000, 5, 'three slots ready');
    assert.equal(await pool.take('k'), 1, 'the two taken last first were unusable');
    assert.deepEqual([pool.stats().images.k!.hits, pool.stats().images.k!.discarded], [1, 2]);
    await until(() => destroyed.length === 2, 5000, 5, 'the unusable slots torn down');
    assert.deepEqual(destroyed.sort(), [2, 3]);
    await until(() => pool.stats().images.k!.ready >= 1, 5000, 5, 'refilled');
    // None usable: the take prepares one on the spot, as when none is ready.
    noneUsable = true;
    const misses = pool.stats().images.k!.misses;
    const slot = await pool.take('k');
    assert.ok(onTheSpot.has(slot), `slot ${slot} prepared on the spot`);
    assert.equal(pool.stats().images.k!.misses, misses + 1);
  } finally {
    await pool.close();
  }
});

test('the factory is told whether a slot is prepared ahead or on the spot for a waiting take', async () => {
  const occasions: PrepareOccasion[] = [];
  let next = 0;
  const pool = new KeyedPool<number>(
    {
      prepare: async (_key, occasion) => {
        occasions.push(occasion);
        return ++next;
      },
      destroy: async () => undefined,
    },
    { sizing: () => ({ minReady: 1, maxReady: 1, idleShrinkMs: 60_000 }), refillConcurrency: 1, failureBackoffMs: 1000 },
  );
  try {
    pool.warm('k');
    await until(() => pool.stats().images.k!.ready === 1, 5000, 5, 'one slot ready');
    assert.equal(await pool.take('k'), 1);
    assert.equal(await pool.take('k'), 2);
    assert.deepEqual(occasions, ['ahead', 'onTheSpot']);
  } finally {
    await pool.close();
  }
});

test('an idle key gives back its oldest slot first', async () => {
  const { factory, destroyed } = numberedFactory();
  const pool = new KeyedPool<number>(factory, {
    sizing: () => ({ minReady: 1, maxReady: 3, idleShrinkMs: 1 }),
    refillConcurrency: 1,
    failureBackoffMs: 1000,
  });
  try {
    // Three misses raise the target to 3; their slots are released, and refills make 4, 5, 6.
    const taken = [await pool.take('k'), await pool.take('k'), await pool.take('k')];
    assert.deepEqual(taken, [1, 2, 3]);
    for (const slot of taken) pool.release('k', slot);
    await until(() => destroyed.filter((s) => s > 3).length >= 2, 5000, 5, 'two refilled slots given back');
    // Shrinking from 3 towards 1 destroyed the two oldest of 4, 5, 6; the newest is kept.
    assert.deepEqual(destroyed.filter((s) => s > 3).sort(), [4, 5]);
    assert.equal(await pool.take('k'), 6);
  } finally {
    await pool.close();
  }
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function countingPool(sizing: { minReady: number; maxReady: number }) {
  const numbered = numberedFactory();
  const pool = new KeyedPool<number>(numbered.factory, {
    sizing: () => ({ ...sizing, idleShrinkMs: 60_000 }),
    refillConcurrency: 2,
    failureBackoffMs: 1000,
  });
  const stats = () => pool.stats().images.k!;
  /** Warms key k and waits for its minReady slots. */
  const warmed = async () => {
    pool.warm('k');
    await until(() => stats().ready === sizing.minReady, 5000, 5, `${sizing.minReady} slots ready`);
  };
  /** Takes two slots and releases the first: one job ended, one still running. */
  const oneEndedOneRunning = async () => {
    const ended = await pool.take('k');
    const running = await pool.take('k');
    pool.release('k', ended);
    return { ended, running };
  };
  return { pool, destroyed: numbered.destroyed, stats, warmed, oneEndedOneRunning };
}

/** Runs `body` against a warmed countingPool, closed afterwards. */
async function withWarmPool(sizing: { minReady: number; maxReady: number }, body: (p: ReturnType<typeof countingPool>) => Promise<void>) {
  const counting = countingPool(sizing);
  try {
    await counting.warmed();
    await body(counting);
  } finally {
    await counting.pool.close();
  }
}

test('a take that leaves nothing ready or coming raises the target, as a miss does; one that leaves a spare does not', async () => {
  await withWarmPool({ minReady: 1, maxReady: 3 }, async ({ pool, stats }) => {
    const first = await pool.take('k');
    assert.deepEqual([stats().target, stats().misses], [2, 0], 'the pool ran dry without a miss');
    pool.release('k', first);
    await until(() => stats().ready === 2, 5000, 5, 'refilled to the new target');
    const second = await pool.take('k');
    assert.equal(stats().target, 2, 'a spare left: no change');
    const third = await pool.take('k');
    assert.equal(stats().target, 3);
    pool.release('k', second);
    pool.release('k', third);
  });
});

test('upkeep yields to running jobs: a used slot is torn down and replaced once the last job ends', async () => {
  await withWarmPool({ minReady: 4, maxReady: 4 }, async ({ pool, destroyed, stats, oneEndedOneRunning }) => {
    const { ended: first, running: second } = await oneEndedOneRunning();
    // `second` still runs, and two slots are ready, as many as jobs ran at once: no teardown, no
    // refill yet.
    await sleep(50);
    assert.deepEqual(destroyed, []);
    assert.equal(stats().prepared, 4);
    assert.equal(stats().retiring, 1);
    pool.release('k', second);
    await until(() => destroyed.length === 2 && stats().ready === 4, 5000, 5, 'both torn down and replaced');
    assert.deepEqual(destroyed.sort(), [first, second].sort());
    assert.equal(stats().retiring, 0);
  });
});

test('upkeep waits for a long job, but not to its end', async () => {
  await withWarmPool({ minReady: 4, maxReady: 4 }, async ({ destroyed, stats, oneEndedOneRunning }) => {
    const releasedAt = Date.now();
    const { ended: used } = await oneEndedOneRunning(); // the running one: a long job, held to the end
    await until(() => destroyed.includes(used) && stats().ready === 4, 5000, 5, 'torn down and replaced while the long job runs');
    assert.ok(Date.now() - releasedAt >= 50, 'not before the jobs had their time');
  });
});

test('a key with fewer slots ready than it ran jobs at once refills that many at once; the rest waits', async () => {
  await withWarmPool({ minReady: 3, maxReady: 3 }, async ({ destroyed, stats, oneEndedOneRunning }) => {
    await oneEndedOneRunning();
    // Two jobs ran at once a moment ago and one slot is ready: demand, not upkeep. One more is
    // made at once; the third (target 3) and the teardown wait.
    await until(() => stats().ready === 2, 5000, 5, 'one refilled while a job runs');
    await sleep(30);
    assert.equal(stats().ready, 2);
    assert.deepEqual(destroyed, []);
  });
});

test('used slots beyond maxReady are torn down while jobs run', async () => {
  await withWarmPool({ minReady: 1, maxReady: 1 }, async ({ pool, destroyed }) => {
    const first = await pool.take('k');
    const second = await pool.take('k');
    await pool.take('k'); // still running below
    pool.release('k', first);
    pool.release('k', second);
    await until(() => destroyed.includes(first), 5000, 5, 'the oldest used slot torn down');
    await sleep(30);
    assert.deepEqual(destroyed, [first]);
  });
});

test('close tears down the used slots still waiting for upkeep', async () => {
  const { pool, destroyed } = countingPool({ minReady: 0, maxReady: 2 });
  const first = await pool.take('k');
  const second = await pool.take('k');
  pool.release('k', first);
  pool.release('k', second);
  await pool.close();
  assert.deepEqual(destroyed.sort(), [first, second].sort());
});

test('pauseRefills: no slot is prepared ahead until the pause ends, then the housekeeping tick refills', async () => {
  const { factory } = numberedFactory();
  const pool = new KeyedPool<number>(factory, { sizing: () => ({ minReady: 1, maxReady: 1, idleShrinkMs: 60_000 }), refillConcurrency: 1, failureBackoffMs: 1000 });
  try {
    const pausedAt = Date.now();
    pool.pauseRefills(400);
    pool.warm('k');
    await sleep(250);
    assert.deepEqual([pool.stats().images.k!.ready, pool.stats().images.k!.prepared], [0, 0]);
    await until(() => pool.stats().images.k!.ready === 1, 5000, 5, 'refilled once the pause ended');
    assert.ok(Date.now() - pausedAt >= 400);
  } finally {
    await pool.close();
  }
});

test('destroyIdle: a used slot waiting for its teardown first, then the oldest ready slot of the other key idle longest; not refilled until the pause ends', async () => {
  const { factory, destroyed } = numberedFactory();
  const pool = new KeyedPool<number>(factory, { sizing: () => ({ minReady: 2, maxReady: 2, idleShrinkMs: 60_000 }), refillConcurrency: 1, failureBackoffMs: 1000 });
  const stats = (key: string) => pool.stats().images[key]!;
  try {
    pool.warm('a');
    await until(() => stats('a').ready === 2, 5000, 5, 'a: 1 and 2 ready');
    pool.warm('b');
    await until(() => stats('b').ready === 2, 5000, 5, 'b: 3 and 4 ready');
    const pauseMs = 1000;
    const pausedAt = Date.now();
    pool.pauseRefills(pauseMs); // nothing replaced meanwhile (as pool.ts pauses at a shortage of uids)
    assert.equal(await pool.take('a'), 2);
    await sleep(5);
    assert.equal(await pool.take('b'), 4); // b took last: a is the idler
    pool.release('a', 2); // its teardown waits for b's running job
    const destroyedNow = async (key: string) => {
      const before = destroyed.length;
      const any = await pool.destroyIdle(key);
      // Resolved once the slot is gone, not before.
      assert.equal(destroyed.length, before + (any ? 1 : 0));
      return any ? destroyed.at(-1) : undefined;
    };
    assert.equal(await destroyedNow('x'), 2, 'the used one first');
    assert.equal(await destroyedNow('x'), 1, "the idler key's");
    assert.deepEqual([stats('a').evicted, stats('a').target], [1, 0], 'counted, and not refilled back while paused');
    assert.equal(await destroyedNow('b'), undefined, "none for b's take but its own");
    assert.equal(await destroyedNow('x'), 3, "b's oldest");
    assert.deepEqual([stats('b').evicted, stats('b').target, stats('b').ready], [1, 0, 0]);
    assert.equal(await destroyedNow('x'), undefined);
    pool.release('b', 4);
    await sleep(200);
    assert.ok(Date.now() - pausedAt < pauseMs, 'the steps above ran within the pause');
    assert.deepEqual([stats('a').target, stats('a').ready, stats('b').target, stats('b').ready], [0, 0, 0, 0], 'still lowered while paused');
    // The pause over, the evicted keys come back to their minReady: only a miss would raise them.
    await until(() => stats('a').ready === 2 && stats('b').ready === 2, 5000, 5, 'both refilled to minReady after the pause');
    assert.ok(Date.now() - pausedAt >= pauseMs);
    assert.deepEqual([stats('a').target, stats('b').target], [2, 2]);
  } finally {
    await pool.close();
  }
});

test("destroyIdle: the key idle longest is the one whose last take is oldest, whatever its shrink steps since", async () => {
  const { factory, destroyed } = numberedFactory();
  // a shrinks after 300 ms without a take; b not within the test.
  const pool = new KeyedPool<number>(factory, {
    sizing: (key) => ({ minReady: 1, maxReady: 2, idleShrinkMs: key === 'a' ? 300 : 60_000 }),
    refillConcurrency: 1,
    failureBackoffMs: 1000,
  });
  const stats = (key: string) => pool.stats().images[key]!;
  try {
    pool.warm('a');
    pool.warm('b');
    await until(() => stats('a').ready === 1 && stats('b').ready === 1, 5000, 5, 'a and b ready');
    // a's take leaves none ready: its target grows to 2.
    pool.release('a', await pool.take('a'));
    await until(() => stats('a').ready === 2, 5000, 5, 'a refilled to 2');
    await sleep(5);
    pool.release('b', await pool.take('b')); // b's take is the later one
    await until(() => stats('b').ready >= 1 && stats('b').retiring === 0, 5000, 5, 'b refilled, its used slot gone');
    await until(() => stats('a').target === 1, 5000, 5, "a's shrink step, after its take and b's");
    pool.pauseRefills(60_000);
    const before = destroyed.length;
    assert.equal(await pool.destroyIdle('x'), true);
    assert.equal(destroyed.length, before + 1);
    assert.deepEqual([stats('a').evicted, stats('b').evicted], [1, 0], 'a, taken before b, goes (not b, though a shrank since)');
  } finally {
    await pool.close();
  }
});

test('a ready cap bounds the slots ready or prepared ahead over the keys it counts', async () => {
  const { factory } = numberedFactory();
  const pool = new KeyedPool<number>(factory, {
    sizing: () => ({ minReady: 2, maxReady: 2, idleShrinkMs: 60_000 }),
    refillConcurrency: 2,
    failureBackoffMs: 1000,
    readyCap: { slots: 3, counts: (key) => key !== 'roots' },
  });
  const ready = (key: string) => pool.stats().images[key]?.ready ?? 0;
  try {
    for (const key of ['a', 'b', 'roots']) pool.warm(key);
    await until(() => ready('a') + ready('b') === 3 && ready('roots') === 2, 5000, 5, 'three counted slots ready, and the uncounted key full');
    await new Promise((resolve) => setTimeout(resolve, 300)); // a housekeeping tick: nothing more
    assert.equal(ready('a') + ready('b'), 3);
    assert.equal(pool.stats().images.a!.preparing + pool.stats().images.b!.preparing, 0);
    // A take frees a place under the cap, which a refill takes again (a take is never refused).
    const key = ready('a') > 0 ? 'a' : 'b';
    const taken = await pool.take(key);
    await until(() => ready('a') + ready('b') === 3, 5000, 5, 'refilled to the cap');
    pool.release(key, taken);
  } finally {
    await pool.close();
  }
});
