// The mount agent's client when the agent dies under it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MountAgent } from '../../src/pool/mount-agent.js';

test('a request to an agent that died, before its exit is handled, is a PoolError, not a crash', async () => {
  const agent = await MountAgent.start();
  process.kill(agent.pid, 'SIGKILL');
  // Hold the event loop so that the agent's exit is not handled before the next write, which
  // then meets a closed pipe.
  const until = Date.now() + 300;
  while (Date.now() < until) {
    // busy
  }
  await assert.rejects(agent.request('ping', {}), (err: Error) => err.name === 'PoolError');
  await assert.rejects(agent.request('ping', {}), (err: Error) => err.name === 'PoolError', 'and every request after it');
  await agent.close();
});
