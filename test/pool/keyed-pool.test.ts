// KeyedPool's order on its own, with a factory that hands out numbered slots: no kernel needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedPool } from '../../src/pool/keyed-pool.js';
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
