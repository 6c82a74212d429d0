// The lock fence (src/queue/lock-fence.ts): a run stopped once its lock may have expired, not
// while a renewal's answer waits unread in the socket after a stall of the event loop.
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { LOCK_FENCE_MARGIN_MS, LockFence } from '../../src/queue/lock-fence.js';

test("a renewal answered during an event-loop stall is read before the fence stops the run", async () => {
  // A renewal's round trip as a byte echoed over loopback TCP.
  const server = net.createServer((socket) => socket.on('data', (data) => socket.write(data)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  try {
    // The lock may expire 300 ms after the take (less the margin); a renewal sent 150 ms in moves
    // that to 450 ms, but its answer comes while the loop is stalled from then to 350 ms.
    const lockDurationMs = LOCK_FENCE_MARGIN_MS + 300;
    let expired = false;
    const takenAtMs = performance.now();
    const fence = new LockFence(lockDurationMs, Date.now(), () => (expired = true));
    await new Promise((resolve) => setTimeout(resolve, 150 - (performance.now() - takenAtMs)));
    const sentAtMs = performance.now();
    client.once('data', () => fence.renewed(sentAtMs));
    client.write('x');
    while (performance.now() - takenAtMs < 350);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(expired, false, 'stopped though the renewal was answered');
    // Unrenewed from then on, it stops the run once that renewal's lock may expire.
    await new Promise((resolve) => setTimeout(resolve, lockDurationMs));
    assert.equal(expired, true, 'not stopped once the renewal lapsed');
    fence.stop();
  } finally {
    client.destroy();
    server.close();
  }
});
