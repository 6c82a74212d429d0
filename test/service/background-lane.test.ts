// The background lane's bookkeeping: one lane worker taking jobs per long job, never more than
// it has, none once the long jobs end or the worker closes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackgroundLane, type LaneWorker } from '../../src/queue/background-lane.js';
import { until } from '../helpers/until.js';

function laneWorkers(count: number): { workers: LaneWorker[]; taking: () => number } {
  const state = Array<boolean>(count).fill(false);
  const workers = state.map((_, i) => ({
    resume: () => void (state[i] = true),
    pause: async () => void (state[i] = false),
  }));
  return { workers, taking: () => state.filter(Boolean).length };
}

describe('background lane', () => {
  it('opens one lane worker per long job, up to its workers, and closes them as long jobs end', async () => {
    const { workers, taking } = laneWorkers(2);
    const lane = new BackgroundLane(workers, 20, (error) => assert.fail(String(error)));
    const short = lane.track();
    short(); // ended before it was long
    const ends = [lane.track(), lane.track(), lane.track()];
    assert.equal(taking(), 0, 'no job is long yet');
    await until(() => lane.running === 3, 2000);
    assert.equal(taking(), 2, 'three long jobs, two lane workers');
    ends[0]!();
    assert.equal(taking(), 2);
    ends[1]!();
    assert.equal(taking(), 1);
    ends[2]!();
    assert.equal(taking(), 0);
    assert.equal(lane.running, 0);
  });

  it('does nothing when off, and resumes nothing once closed', async () => {
    const off = laneWorkers(2);
    const disabled = new BackgroundLane(off.workers, 0, () => {});
    const end = disabled.track();
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(off.taking(), 0);
    end();

    const { workers, taking } = laneWorkers(2);
    const lane = new BackgroundLane(workers, 20, () => {});
    lane.close();
    lane.track();
    await until(() => lane.running === 1, 2000);
    assert.equal(taking(), 0);
  });
});
