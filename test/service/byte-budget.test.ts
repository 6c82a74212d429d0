// ByteBudget: claims wait until their bytes fit, first come first served; one larger than the
// budget goes alone; an aborted wait lets the next claim go.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteBudget, ByteBudgetAbortedError } from '../../src/queue/byte-budget.js';

/** Whether a promise has settled once pending callbacks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true), () => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

test('claims within the budget go at once; one that does not fit waits for a release', async () => {
  const budget = new ByteBudget(100);
  const releaseA = await budget.claim(60);
  const releaseB = await budget.claim(40);
  assert.equal(budget.heldBytes, 100);
  const c = budget.claim(1);
  assert.equal(await settled(c), false, 'the budget is full');
  releaseA();
  releaseA(); // a second release changes nothing
  const releaseC = await c;
  assert.equal(budget.heldBytes, 41);
  releaseB();
  releaseC();
  assert.equal(budget.heldBytes, 0);
});

test('first come, first served: a large claim waiting holds back a smaller one behind it', async () => {
  const budget = new ByteBudget(100);
  const releaseA = await budget.claim(50);
  const large = budget.claim(80);
  const small = budget.claim(10);
  assert.deepEqual([await settled(large), await settled(small)], [false, false]);
  releaseA();
  const releaseLarge = await large;
  const releaseSmall = await small;
  assert.equal(budget.heldBytes, 90);
  releaseLarge();
  releaseSmall();
});

test('a claim larger than the budget goes alone, once nothing else is held', async () => {
  const budget = new ByteBudget(100);
  const releaseA = await budget.claim(10);
  const huge = budget.claim(500);
  assert.equal(await settled(huge), false);
  releaseA();
  const releaseHuge = await huge;
  assert.equal(budget.heldBytes, 500);
  const next = budget.claim(1);
  assert.equal(await settled(next), false, 'nothing goes beside it');
  releaseHuge();
  (await next)();
  assert.equal(budget.heldBytes, 0);
});

test('an aborted wait rejects and lets the claims behind it go', async () => {
  const budget = new ByteBudget(100);
  const releaseA = await budget.claim(50);
  const stop = new AbortController();
  const large = budget.claim(80, stop.signal);
  const small = budget.claim(10);
  stop.abort();
  await assert.rejects(large, ByteBudgetAbortedError);
  const releaseSmall = await small;
  assert.equal(budget.heldBytes, 60);
  await assert.rejects(budget.claim(1, stop.signal), ByteBudgetAbortedError, 'already aborted: refused at once');
  releaseA();
  releaseSmall();
  assert.equal(budget.heldBytes, 0);
});
