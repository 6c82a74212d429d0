// The private redis-server's place among the processes.
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { holdLockFile, isLockFileHeld } from '../../src/lock-file.js';
import { startRedisServer } from '../../src/queue/redis-server.js';
import { processGroup } from '../helpers/processes.js';
import { start } from '../helpers/redis.js';


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
