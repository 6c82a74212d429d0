// The private redis-server's place among the processes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { start } from '../helpers/redis.js';

/** The process group of a process (the fifth field of /proc/<pid>/stat, after the comm). */
function processGroup(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
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
