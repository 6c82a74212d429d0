// After 1,000 runs the supervising process holds nothing more than before: descriptors, mounts,
// cgroups, child processes, threads, the addon's stacks and supervisor threads. And what a
// container holds of the process's descriptors meanwhile is within the counts a worker's open
// files limit is checked against (src/sandbox/descriptors.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PREPARED_CONTAINER_DESCRIPTORS, PREPARING_CONTAINER_DESCRIPTORS } from '../../src/sandbox/descriptors.js';
import { native } from '../../src/sandbox/native.js';
import { childPids } from '../helpers/processes.js';
import { DEFAULT_LIMITS, skip, useFixture } from './fixture.js';

const RUNS = 1000;

function statusField(name: string): number {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  return Number.parseInt(line?.split(/\s+/)[1] ?? 'NaN', 10);
}

function cgroupDirsOf(instanceId: string): string[] {
  const found: string[] = [];
  for (const controller of fs.readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', controller, 'cellblock', instanceId);
    const v2dir = path.join('/sys/fs/cgroup', 'cellblock', instanceId);
    for (const d of [dir, v2dir]) {
      try {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) found.push(path.join(d, e.name));
      } catch {
        // not this hierarchy
      }
    }
  }
  return [...new Set(found)];
}

interface Snapshot {
  fds: number;
  mounts: number;
  cgroups: number;
  children: number;
  threads: number;
}

/** Mounts that would be ours had one leaked into the supervisor's namespace. Other engineers'
 * tests mount things concurrently on this machine: count only paths of this test. */
function ourMounts(paths: string[]): number {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((line) => paths.some((p) => line.includes(p))).length;
}

function snapshot(instanceId: string, paths: string[]): Snapshot {
  return {
    fds: fs.readdirSync('/proc/self/fd').length,
    mounts: ourMounts(paths),
    cgroups: cgroupDirsOf(instanceId).length,
    children: childPids().length,
    threads: statusField('Threads'),
  };
}

describe('sandbox leaks', { skip }, () => {
  const f = useFixture();

  it('a container holds no more of the process\'s descriptors than descriptors.ts counts, prepared, being prepared, or run', async () => {
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const spec = () => ({ rootDir: f.rootDir, workDirHostPath: f.workDir(), argv: ['/bin/true'], limits: DEFAULT_LIMITS });
    const count = 4;
    const before = fds();
    // Right after the synchronous part of each prepare (every descriptor the engine opens for it
    // is open then, until the supervisor closes init's), and once each is ready.
    const preparing: ReturnType<typeof f.sandbox.prepare>[] = [];
    let most = 0;
    for (let i = 0; i < count; i++) {
      preparing.push(f.sandbox.prepare(spec()));
      most = Math.max(most, fds() - before);
    }
    const containers = await Promise.all(preparing);
    const prepared = fds() - before;
    assert.ok(most <= count * PREPARING_CONTAINER_DESCRIPTORS, `${most} descriptors for ${count} containers being prepared`);
    assert.ok(prepared <= count * PREPARED_CONTAINER_DESCRIPTORS, `${prepared} descriptors for ${count} prepared containers`);
    const results = await Promise.all(containers.map((container) => container.start({ argv: ['/bin/true'], limits: DEFAULT_LIMITS })));
    assert.deepEqual(results.map((result) => result.verdict), Array(count).fill('ok'));
    const run = fds() - before;
    assert.ok(run <= count * PREPARED_CONTAINER_DESCRIPTORS, `${run} descriptors for ${count} containers run`);
    await Promise.all(containers.map((container) => container.destroy()));
  });

  it(`leaves nothing behind after ${RUNS} runs`, { timeout: 600_000 }, async () => {
    const work = f.workDir();
    const spec = { rootDir: f.rootDir, workDirHostPath: work, argv: ['/bin/true'], limits: DEFAULT_LIMITS };
    // Warm up: first runs allocate libuv and TSFN machinery that then stays.
    for (let i = 0; i < 20; i++) await f.sandbox.run(spec);
    await sleep(100);
    const paths = [f.rootDir, path.dirname(work)];
    const before = snapshot(f.sandbox.instanceId, paths);
    let failures = 0;
    let runs = 0;
    for (let i = 0; i < RUNS; i += 4) {
      // Four at a time, with a prepared-then-destroyed (never started) container mixed in.
      const results = await Promise.all([
        f.sandbox.run(spec),
        f.sandbox.run(spec),
        f.sandbox.run(spec),
        f.sandbox.run({ ...spec, argv: ['/bin/sh', '-c', 'sleep 0 & echo x'] }),
        f.sandbox.prepare(spec).then((c) => c.destroy()),
      ]);
      runs += 4;
      failures += results.filter((r) => r && r.verdict !== 'ok').length;
    }
    await sleep(200);
    const after = snapshot(f.sandbox.instanceId, paths);
    assert.equal(runs, RUNS);
    assert.equal(failures, 0);
    assert.equal(after.fds, before.fds, 'descriptors');
    assert.equal(after.mounts, 0, 'mounts in the supervisor namespace');
    assert.equal(after.cgroups, 0, 'run cgroups');
    assert.equal(after.children, before.children, 'child processes');
    assert.ok(after.threads <= before.threads + 2, `threads ${before.threads} -> ${after.threads}`);
    // VmSize moves with V8's heap reservations; the addon's own counts are exact.
    assert.deepEqual(native.resourceCounts(), { mappedStacks: 0, supervisorThreads: 0, openStates: 0 });
  });
});
