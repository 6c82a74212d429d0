// What one Redis round trip costs the service on this machine: wall time and the client's CPU per
// command, for a read (GET) and a write (SET) under each appendfsync policy, one command at a time
// (a job's critical path) and ten at once (what concurrent jobs share). Same private redis-server
// as `cellblock start` (AOF on); its data dir is under /tmp, i.e. the disk the service would use.
// Then a GET after an idle gap, as a sporadic job's first round trip meets it (both processes
// asleep): p50 wall time of --idle-commands GETs, each --idle-ms after the last.
//
//   node --import tsx loadtest/redis-roundtrip.ts [--commands N] [--idle-ms MS] [--idle-commands N]
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/queue/redis-server.js';
import { usToMs } from '../src/units.js';
import { runInterruptible } from './service/interrupt.js';
import { makeScratchDir } from './service/scratch.js';
import { distribution } from './service/stats.js';

const { values } = parseArgs({
  options: {
    commands: { type: 'string', default: '2000' },
    'idle-ms': { type: 'string', default: '250' },
    'idle-commands': { type: 'string', default: '40' },
  },
});
const COMMANDS = Number(values.commands);
const IDLE_MS = Number(values['idle-ms']);
const IDLE_COMMANDS = Number(values['idle-commands']);
const BATCH = 10;

async function measure(redis: Redis, command: () => Promise<unknown>, together: number): Promise<{ wallMs: number; cpuMs: number }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let sent = 0; sent < COMMANDS; sent += together) await Promise.all(Array.from({ length: together }, command));
  const cpu = process.cpuUsage(cpuBefore);
  return { wallMs: (performance.now() - started) / COMMANDS, cpuMs: usToMs(cpu.user + cpu.system) / COMMANDS };
}

const dataDir = await makeScratchDir('redis-roundtrip');
const server = await startRedisServer({ dataDir });
const redis = new Redis(server.url);
await runInterruptible('redis-roundtrip', async () => {
  console.log(`redis round trips, ${COMMANDS} commands each; per command: wall ms / client CPU ms`);
  for (const fsync of ['always', 'everysec'] as const) {
    await redis.config('SET', 'appendfsync', fsync);
    for (const [name, command] of [
      ['GET', () => redis.get('cellblock-loadtest')],
      ['SET', () => redis.set('cellblock-loadtest', 'x')],
    ] as const) {
      await measure(redis, command, 1); // warm-up
      const alone = await measure(redis, command, 1);
      const batched = await measure(redis, command, BATCH);
      console.log(
        `  appendfsync ${fsync.padEnd(8)} ${name}: one at a time ${alone.wallMs.toFixed(3)} / ${alone.cpuMs.toFixed(3)}; ${BATCH} at once ${batched.wallMs.toFixed(3)} / ${batched.cpuMs.toFixed(3)}`,
      );
    }
  }
  const afterIdleMs: number[] = [];
  for (let sent = 0; sent < IDLE_COMMANDS; sent++) {
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const started = performance.now();
    await redis.get('cellblock-loadtest');
    afterIdleMs.push(performance.now() - started);
  }
  const p50 = distribution(afterIdleMs).p50;
  console.log(`  GET after ${IDLE_MS} ms idle (appendfsync everysec): p50 wall ${p50.toFixed(3)} ms of ${IDLE_COMMANDS}`);
}, async () => {
  redis.disconnect();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});
