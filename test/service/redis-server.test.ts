// The private redis-server's place among the processes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { holdLockFile, isLockFileHeld } from '../../src/lock-file.js';
import { exitReason, MAX_QUICK_REDIS_EXITS, startRedisServer, type RedisExit, type RedisServerOptions } from '../../src/queue/redis-server.js';
import { processExists, processGroup } from '../helpers/processes.js';
import { start } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

/** What a supervisor reported, in order. */
interface Reports {
  exits: (RedisExit & { restartInMs: number })[];
  restarts: { pid: number | undefined; downMs: number }[];
  givenUp: Error[];
}

/** A supervised server in a data dir of its own (removed after `body`), its reports collected. */
async function withSupervisedServer(
  options: Partial<RedisServerOptions> & { restartDelayMs?: number },
  body: (server: Awaited<ReturnType<typeof startRedisServer>>, reports: Reports, dataDir: string) => Promise<void>,
): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cellblock-test-redis-'));
  const reports: Reports = { exits: [], restarts: [], givenUp: [] };
  const { restartDelayMs, ...serverOptions } = options;
  try {
    const server = await startRedisServer({
      dataDir,
      ...serverOptions,
      supervise: {
        onExit: (exit) => reports.exits.push(exit),
        onRestarted: (restarted) => reports.restarts.push(restarted),
        onGiveUp: (error) => reports.givenUp.push(error),
        ...(restartDelayMs !== undefined ? { restartDelayMs } : {}),
      },
    });
    try {
      await body(server, reports, dataDir);
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}


test("redis-server runs in a process group of its own: a terminal's Ctrl-C to ours does not stop it first", async () => {
  const redis = await start();
  try {
    const pid = redis.pid;
    assert.ok(pid, 'the server has a pid');
    assert.notEqual(processGroup(pid), processGroup('self'));
  } finally {
    await redis.stop();
  }
});

test("a descriptor handed to redis-server (heldFd) is held until the server exits: `start`'s lock outlives `start` while its Redis writes", async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cellblock-test-redis-'));
  try {
    const lock = path.join(dataDir, 'cellblock-start.lock');
    const fd = holdLockFile(lock);
    const server = await startRedisServer({ dataDir, heldFd: fd });
    try {
      closeSync(fd);
      assert.equal(isLockFileHeld(lock), true, 'the server holds the lock once its taker has let go');
    } finally {
      await server.stop();
    }
    assert.equal(isLockFileHeld(lock), false, 'released when the server exits');
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a supervised redis-server killed with SIGKILL is started again on its port and data, which it replays; its stop is no crash', async () => {
  await withSupervisedServer({}, async (server, reports, dataDir) => {
    const client = new Redis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
    client.on('error', () => {});
    try {
      await client.set('accepted', 'before the kill');
      const firstPid = server.pid!;
      process.kill(firstPid, 'SIGKILL');
      await until(() => reports.restarts.length === 1, 20_000, 20, 'the server started again');
      assert.equal(reports.exits.length, 1);
      assert.deepEqual([reports.exits[0]!.pid, reports.exits[0]!.signal, reports.exits[0]!.restartInMs], [firstPid, 'SIGKILL', 250]);
      assert.notEqual(server.pid, firstPid, 'a new process');
      assert.equal(reports.restarts[0]!.pid, server.pid);
      assert.ok(processExists(server.pid!));
      // The same port: the client reconnects by itself, and finds what was written before the kill.
      assert.equal(await client.get('accepted'), 'before the kill', `the append-only file in ${dataDir} was replayed`);
      const secondPid = server.pid!;
      await server.stop();
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.deepEqual([reports.exits.length, reports.restarts.length, reports.givenUp.length], [1, 1, 0], 'the stop was not taken for a crash');
      assert.ok(!processExists(secondPid));
      assert.ok(!(await answers(server.port)));
    } finally {
      client.disconnect();
    }
  });
});

test("each restarted server holds the caller's descriptor (heldFd) too: `start`'s lock lasts while any of its servers may write", async () => {
  const lockDir = await mkdtemp(path.join(os.tmpdir(), 'cellblock-test-redis-lock-'));
  const lock = path.join(lockDir, 'cellblock-start.lock');
  const fd = holdLockFile(lock);
  let closed = false;
  try {
    await withSupervisedServer({ heldFd: fd }, async (server, reports) => {
      process.kill(server.pid!, 'SIGKILL');
      await until(() => reports.restarts.length === 1, 20_000, 20, 'the server started again');
      closeSync(fd);
      closed = true;
      assert.equal(isLockFileHeld(lock), true, 'the restarted server holds the lock');
      await server.stop();
      assert.equal(isLockFileHeld(lock), false, 'released when it exits');
    });
  } finally {
    if (!closed) closeSync(fd);
    await rm(lockDir, { recursive: true, force: true });
  }
});

test('a stop while a restart is pending starts no server', async () => {
  await withSupervisedServer({ restartDelayMs: 500 }, async (server, reports) => {
    process.kill(server.pid!, 'SIGKILL');
    await until(() => reports.exits.length === 1, 10_000, 10, 'the exit seen');
    await server.stop();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(reports.restarts, []);
    assert.ok(!(await answers(server.port)), 'nothing listens on its port');
  });
});

test('a server that keeps dying soon after its start is given up after a bounded number of tries, saying why', async () => {
  await withSupervisedServer({ restartDelayMs: 20 }, async (server, reports) => {
    // Killed as soon as it answers, each time (its restarts backing off meanwhile).
    for (let kills = 0; reports.givenUp.length === 0; kills++) {
      assert.ok(kills <= MAX_QUICK_REDIS_EXITS, `given up after ${MAX_QUICK_REDIS_EXITS + 1} exits`);
      process.kill(server.pid!, 'SIGKILL');
      await until(() => reports.restarts.length > kills || reports.givenUp.length === 1, 20_000, 10, 'a restart or the give-up');
    }
    assert.equal(reports.exits.length, MAX_QUICK_REDIS_EXITS, 'each exit but the last was followed by a restart');
    assert.deepEqual(reports.exits.map((exit) => exit.restartInMs), [20, 40, 80, 160, 320], 'backing off');
    const message = reports.givenUp[0]!.message;
    assert.match(message, new RegExp(`^the private redis-server on port ${server.port} \\(data in \\S+\\) exited 6 times in a row, each within 60 s of its start, the last with SIGKILL`));
    assert.ok(!message.includes('\n'), `one line: ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(reports.exits.length, MAX_QUICK_REDIS_EXITS, 'and not started again');
  });
});

test('a server whose port another program took while it was down is given up at once, saying so; what answers there is never taken for it', async () => {
  const squatter = net.createServer((socket) => socket.destroy());
  try {
    await withSupervisedServer({ restartDelayMs: 20 }, async (server, reports, dataDir) => {
      process.kill(server.pid!, 'SIGKILL');
      // Another process takes the port as soon as the server has let go of it.
      for (let tries = 0; ; tries++) {
        assert.ok(tries < 2000, 'the port taken');
        const listening = await new Promise<boolean>((resolve) => {
          squatter.once('error', () => resolve(false));
          squatter.listen(server.port, '127.0.0.1', () => resolve(true));
        });
        if (listening) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await until(() => reports.givenUp.length === 1, 30_000, 20, 'the server given up');
      assert.equal(reports.restarts.length, 0);
      assert.equal(reports.exits.length, 1, 'the kill, followed by one restart, which found the port taken');
      assert.equal(reports.givenUp[0]!.message, `the private redis-server's port ${server.port} was taken by another program while it was down (data in ${dataDir}); not starting it again`);
    });
  } finally {
    squatter.close();
  }
});

test("a Redis of another's that took the port while the server was down is never taken for it", async () => {
  let squatter: ChildProcess | undefined;
  try {
    await withSupervisedServer({ restartDelayMs: 300 }, async (server, reports) => {
      process.kill(server.pid!, 'SIGKILL');
      // Another redis-server takes the port before the restart: it answers PING as ours would.
      for (let tries = 0; squatter === undefined; tries++) {
        assert.ok(tries < 200, 'the port taken');
        const started = spawn('redis-server', ['--port', String(server.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
        const exited = await Promise.race([once(started, 'exit').then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 100))]);
        if (!exited) squatter = started;
      }
      await until(() => reports.givenUp.length === 1, 30_000, 20, 'the server given up');
      assert.deepEqual(reports.restarts, [], 'the other Redis was not taken for the restarted server');
      assert.match(reports.givenUp[0]!.message, /was taken by another program while it was down/);
    });
  } finally {
    if (squatter && squatter.exitCode === null) {
      squatter.kill('SIGKILL');
      await once(squatter, 'exit');
    }
  }
});

test("a server's exit reason is its last warnings, without their prefix", () => {
  const lines = [
    '30818:C 07 Dec 2026 04:16:53.631 # Configuration loaded',
    '30818:M 07 Dec 2026 04:16:53.631 * monotonic clock: POSIX clock_gettime',
    '30818:M 07 Dec 2026 04:16:53.632 # Warning: Could not create server TCP listening socket 127.0.0.1:41821: bind: Address already in use',
    '30818:M 07 Dec 2026 04:16:53.632 # Failed listening on port 41821 (TCP), aborting.',
  ];
  assert.equal(
    exitReason(lines),
    'Warning: Could not create server TCP listening socket 127.0.0.1:41821: bind: Address already in use; Failed listening on port 41821 (TCP), aborting.',
  );
  assert.equal(exitReason(['30818:M 07 Dec 2026 04:16:53.631 * Ready to accept connections']), 'Ready to accept connections');
  assert.equal(exitReason([]), '');
});
