// The load test's statistics: nearest-rank percentiles, and the bootstrap interval that says how
// precisely a run pins down "p50 above bare".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootstrapInterval, distribution, median } from '../../loadtest/service/stats.js';

/** A reproducible sample: `count` values spread around `center` (a skewed, latency-like shape). */
function latencies(count: number, center: number, seed: number): number[] {
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: count }, () => center + 2 * (next() - 0.5) + (next() < 0.1 ? 5 * next() : 0));
}

const above = (a: ArrayLike<number>, b: ArrayLike<number>) => median(a) - median(b);

describe('load test statistics', () => {
  it('takes percentiles by nearest rank', () => {
    const d = distribution([5, 1, 4, 2, 3, 6, 7, 8, 9, 10]);
    assert.deepEqual([d.p50, d.p90, d.p99, d.max, d.mean], [5, 9, 10, 10, 5.5]);
  });

  it('brackets a true difference of medians, narrowly with many samples', () => {
    const bare = latencies(200, 10, 1);
    const service = latencies(200, 14, 2);
    const { low, high } = bootstrapInterval(service, bare, above);
    assert.ok(low <= above(service, bare) && above(service, bare) <= high, `${low} .. ${high}`);
    assert.ok(low > 3 && high < 5, `the 4 ms shift within ${low} .. ${high}`);
    assert.ok(high - low < 1, `narrow with 200 samples a side: ${low} .. ${high}`);
  });

  it('holds zero for two samples of the same distribution, and is wider with fewer samples', () => {
    const many = bootstrapInterval(latencies(400, 10, 3), latencies(400, 10, 4), above);
    assert.ok(many.low <= 0 && 0 <= many.high, `${many.low} .. ${many.high}`);
    const few = bootstrapInterval(latencies(20, 10, 3), latencies(20, 10, 4), above);
    assert.ok(few.high - few.low > many.high - many.low, `20 a side ${few.low} .. ${few.high}, 400 a side ${many.low} .. ${many.high}`);
  });

  it('gives the same interval for the same samples, and none for an empty side', () => {
    const a = latencies(100, 12, 5);
    const b = latencies(100, 10, 6);
    assert.deepEqual(bootstrapInterval(a, b, above), bootstrapInterval(a, b, above));
    assert.notDeepEqual(bootstrapInterval(a, b, above, { seed: 1 }), bootstrapInterval(a, b, above, { seed: 2 }));
    const none = bootstrapInterval([], b, above);
    assert.ok(Number.isNaN(none.low) && Number.isNaN(none.high));
  });
});
