// The pool against the real kernel: overlay roots on per-slot tmpfs, single use, no leftovers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createPool, type Pool } from '../../src/pool/index.js';
import { SANDBOX_UID } from '../../src/pool/root.js';
import { SANDBOX_UID_COUNT } from '../../src/pool/uid-leases.js';
import { until } from '../helpers/until.js';
import { makeScratch, mountsMentioning, poolSkipReason, type Scratch } from './helpers.js';

const skip = poolSkipReason();
const IMAGE = 'busybox';

async function withPool(
  sizing: { minReady: number; maxReady: number; idleShrinkMs?: number },
  body: (pool: Pool, scratch: Scratch) => Promise<void>,
  roots: { startupPaths?: string[]; layers?: (layerPaths: string[]) => void } = {},
): Promise<void> {
  const scratch = makeScratch();
  try {
    roots.layers?.(scratch.layerPaths);
    const pool = await createPool({
      stateRoot: scratch.stateRoot,
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 4 << 20, startupPaths: roots.startupPaths }),
      sizing: { idleShrinkMs: 60_000, ...sizing },
    });
    try {
      await body(pool, scratch);
    } finally {
      await pool.close();
    }
    assert.deepEqual(mountsMentioning(scratch.dir), [], 'no mounts left after close');
    assert.equal(existsSync(pool.stateDir), false, 'owner dir removed after close');
  } finally {
    scratch.remove();
  }
}

test('a root is the image layers (top wins) with a work dir owned by the sandbox user', { skip }, async () => {
  await withPool({ minReady: 1, maxReady: 1 }, async (pool) => {
    const slot = await pool.take(IMAGE);
    assert.equal(readFileSync(join(slot.root.rootDir, 'etc/layer'), 'utf8'), 'top\n');
    assert.equal(readFileSync(join(slot.root.rootDir, 'etc/base-only'), 'utf8'), 'base\n');
    const box = statSync(slot.root.workDirHostPath);
    assert.equal(box.isDirectory(), true);
    assert.equal(box.uid, slot.root.uid);
    assert.ok(slot.root.uid >= SANDBOX_UID && slot.root.uid < SANDBOX_UID + SANDBOX_UID_COUNT, `uid ${slot.root.uid} in the range`);
    assert.equal(box.gid, 60000);
    assert.equal(slot.root.workDir, '/box');
    // The engine mounts over these, and binds the work dir (a directory of the slot's tmpfs,
    // beside the overlay) onto the root's own /box.
    for (const point of ['proc', 'dev', 'tmp', 'box']) assert.ok(statSync(join(slot.root.rootDir, point)).isDirectory());
    assert.ok(!slot.root.workDirHostPath.startsWith(slot.root.rootDir + '/'), 'the work dir is not under the overlay');
    pool.release(slot);
  });
});

test("a root's start-up paths are looked up in it, as its programs would, before it is taken; not on a miss", { skip }, async () => {
  // abs-link points at /etc/base-only: inside the root it exists (the base layer has it), on the
  // host it does not, so it is found only when looked up with the root as "/".
  const startupPaths = ['/etc/layer', '/bin/sh', '/etc/abs-link', '/etc/missing', '/nowhere/at/all'];
  await withPool(
    { minReady: 1, maxReady: 1 },
    async (pool) => {
      pool.warm(IMAGE);
      await until(() => pool.stats().images[IMAGE]!.ready === 1);
      const prepared = await pool.take(IMAGE);
      try {
        assert.equal(prepared.root.startupPathsFound, 3);
        // None ready now: the next take's root is prepared on the spot while its job waits, and
        // leaves the lookups to the program.
        const onTheSpot = await pool.take(IMAGE);
        try {
          assert.equal(pool.stats().images[IMAGE]!.misses, 1);
          assert.equal(onTheSpot.root.startupPathsFound, 0);
        } finally {
          pool.release(onTheSpot);
        }
      } finally {
        pool.release(prepared);
      }
    },
    { startupPaths, layers: ([, top]) => symlinkSync('/etc/base-only', join(top!, 'etc', 'abs-link')) },
  );
});

test('a file written by one job is not visible to the next job on the same image', { skip }, async () => {
  await withPool({ minReady: 2, maxReady: 2 }, async (pool, scratch) => {
    const first = await pool.take(IMAGE);
    writeFileSync(join(first.root.workDirHostPath, 'secret'), 'job 1');
    writeFileSync(join(first.root.rootDir, 'etc/layer'), 'overwritten by job 1');
    mkdirSync(join(first.root.rootDir, 'tmp/dir'));
    pool.release(first);
    for (let i = 0; i < 3; i++) {
      const next = await pool.take(IMAGE);
      assert.notEqual(next.root.slotDir, first.root.slotDir, 'a slot is never reused');
      assert.equal(existsSync(join(next.root.workDirHostPath, 'secret')), false);
      assert.equal(existsSync(join(next.root.rootDir, 'tmp/dir')), false);
      assert.equal(readFileSync(join(next.root.rootDir, 'etc/layer'), 'utf8'), 'top\n');
      pool.release(next);
    }
    // The layers themselves were never written.
    assert.equal(readFileSync(join(scratch.layerPaths[1]!, 'etc/layer'), 'utf8'), 'top\n');
    await until(() => mountsMentioning(first.root.slotDir).length === 0);
  });
});

test('the writable space is limited to the slot size', { skip }, async () => {
  await withPool({ minReady: 0, maxReady: 1 }, async (pool) => {
    const slot = await pool.take(IMAGE);
    assert.throws(() => writeFileSync(join(slot.root.workDirHostPath, 'big'), Buffer.alloc(5 << 20)), /ENOSPC/);
    pool.release(slot);
  });
});

test('hits, misses and demand: a miss prepares on the spot and raises the target', { skip }, async () => {
  await withPool({ minReady: 0, maxReady: 3 }, async (pool) => {
    const a = await pool.take(IMAGE); // nothing warm: a miss
    let s = pool.stats().images[IMAGE]!;
    assert.equal(s.misses, 1);
    assert.equal(s.hits, 0);
    assert.equal(s.target, 1);
    await until(() => pool.stats().images[IMAGE]!.ready === 1);
    const b = await pool.take(IMAGE);
    s = pool.stats().images[IMAGE]!;
    assert.equal(s.hits, 1);
    assert.equal(s.inUse, 2);
    assert.ok(s.prepared >= 2 && s.prepareMsTotal > 0 && s.prepareMsMax >= s.prepareMsLast && s.prepareMsLast > 0);
    pool.release(a);
    pool.release(b);
    await until(() => pool.stats().images[IMAGE]!.destroyed >= 2);
  });
});

test('an idle pool shrinks back to minReady', { skip }, async () => {
  await withPool({ minReady: 0, maxReady: 2, idleShrinkMs: 100 }, async (pool) => {
    pool.release(await pool.take(IMAGE));
    await until(() => pool.stats().images[IMAGE]!.ready === 1);
    await until(() => pool.stats().images[IMAGE]!.ready === 0 && pool.stats().images[IMAGE]!.target === 0, 3000);
  });
});

test('a bad image (missing layer) is a PoolError, not a crash, and leaves nothing', { skip }, async () => {
  const scratch = makeScratch();
  try {
    const pool = await createPool({
      stateRoot: scratch.stateRoot,
      rootSpec: () => ({ layerPaths: [join(scratch.dir, 'no-such-layer')], upperBytes: 1 << 20 }),
      sizing: { minReady: 0, maxReady: 1 },
    });
    await assert.rejects(pool.take(IMAGE), (err: Error) => err.name === 'PoolError');
    assert.equal(pool.stats().images[IMAGE]!.prepareFailures, 1);
    await pool.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test("a container whose teardown fails still has its root unmounted; close succeeds", { skip }, async () => {
  const scratch = makeScratch();
  try {
    const errors: unknown[] = [];
    const pool = await createPool({
      stateRoot: scratch.stateRoot,
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }),
      sizing: { minReady: 0, maxReady: 1 },
      container: { prepare: async () => 'container', destroy: async () => Promise.reject(new Error('teardown failed')) },
      onBackgroundError: (err) => errors.push(err),
    });
    const slot = await pool.take(IMAGE);
    pool.release(slot);
    await until(() => errors.length > 0, 5000, 5, 'the teardown failed');
    await until(() => mountsMentioning(slot.root.slotDir).length === 0, 5000, 5, "the slot's mounts gone all the same");
    await pool.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test("a key whose slots the container preparer does not prepare for gets roots alone", { skip }, async () => {
  const scratch = makeScratch();
  try {
    const prepared: string[] = [];
    const pool = await createPool<string>({
      stateRoot: scratch.stateRoot,
      rootSpec: () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 }),
      sizing: { minReady: 0, maxReady: 1 },
      container: { prepares: (key) => key !== 'bare', prepare: async (key) => (prepared.push(key), `container of ${key}`), destroy: async () => undefined },
    });
    const [withContainer, bare] = await Promise.all([pool.take(IMAGE), pool.take('bare')]);
    assert.equal(withContainer.container, `container of ${IMAGE}`);
    assert.equal(bare.container, undefined);
    assert.ok(bare.root.workDirHostPath);
    assert.deepEqual(prepared, [IMAGE]);
    pool.release(withContainer);
    pool.release(bare);
    await pool.close();
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test('live slots have uids of their own, and a slot destroyed gives its uid back', { skip }, async () => {
  await withPool({ minReady: 0, maxReady: 0 }, async (pool) => {
    const slots = await Promise.all([pool.take(IMAGE), pool.take(IMAGE), pool.take(IMAGE)]);
    const uids = slots.map((slot) => slot.root.uid);
    assert.equal(new Set(uids).size, 3, `distinct: ${uids}`);
    for (const slot of slots) pool.release(slot);
    await until(() => pool.stats().images[IMAGE]!.destroyed === 3, 5000, 5, 'the three destroyed');
    // The owner keeps the uids it leased and hands the oldest given back out first.
    const again = await pool.take(IMAGE);
    assert.ok(uids.includes(again.root.uid), `${again.root.uid} is one of ${uids}`);
    pool.release(again);
  });
  // A second pool on the same state root (another worker on the machine) never hands out a uid
  // the first holds.
  const scratch = makeScratch();
  try {
    const rootSpec = () => ({ layerPaths: scratch.layerPaths, upperBytes: 1 << 20 });
    const [a, b] = await Promise.all([0, 1].map(() => createPool({ stateRoot: scratch.stateRoot, rootSpec, sizing: { minReady: 0, maxReady: 2 } })));
    try {
      const taken = await Promise.all([a!.take(IMAGE), a!.take(IMAGE), b!.take(IMAGE), b!.take(IMAGE)]);
      assert.equal(new Set(taken.map((slot) => slot.root.uid)).size, 4);
      for (const slot of taken.slice(0, 2)) a!.release(slot);
      for (const slot of taken.slice(2)) b!.release(slot);
    } finally {
      await a!.close();
      await b!.close();
    }
    assert.deepEqual(mountsMentioning(scratch.dir), []);
  } finally {
    scratch.remove();
  }
});

test('1000 jobs through the pool leave no mounts and no slot dirs', { skip }, async () => {
  await withPool({ minReady: 2, maxReady: 4 }, async (pool) => {
    const baseline = mountsMentioning(pool.stateDir).length; // the owner's slots tmpfs
    for (let i = 0; i < 1000; i++) {
      const slot = await pool.take(IMAGE);
      writeFileSync(join(slot.root.workDirHostPath, 'f'), String(i));
      pool.release(slot);
    }
    const s = pool.stats().images[IMAGE]!;
    // Settled: no refill in flight (its mounts would count) and every used slot torn down.
    await until(() => {
      const now = pool.stats().images[IMAGE]!;
      return now.preparing === 0 && now.destroyed === now.prepared - now.ready;
    });
    assert.equal(s.hits + s.misses, 1000);
    const ready = pool.stats().images[IMAGE]!.ready;
    // Each ready slot holds two mounts (its tmpfs and its overlay); nothing else is left.
    assert.equal(mountsMentioning(pool.stateDir).length, baseline + 2 * ready);
  });
});
