// The layer store and the builder on the tiny busybox image: real builds (recipes in private
// namespaces, overlay chroot layers), content-addressed sharing, no-op rebuilds, whiteouts, and
// failed builds that leave nothing behind.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SANDBOX_UID } from '../../src/pool/root.js';
import { SANDBOX_UID_COUNT } from '../../src/pool/uid-leases.js';
import { acquireBuildLock, removeStaleLock } from '../../src/images/build-lock.js';
import { buildImages } from '../../src/images/builder.js';
import { ImageBuildError, ImageStoreError, UnknownImageError } from '../../src/images/errors.js';
import { pruneLayers } from '../../src/images/prune.js';
import { openImageStore, overlayLowerdir } from '../../src/images/store.js';
import type { BuildProgress } from '../../src/images/types.js';
import { definitionsDir, mountsUnder, scratchDir, whyNoLayerBuilds } from './helpers.js';
import { processState } from '../helpers/processes.js';

const skip = whyNoLayerBuilds();
const scratch = scratchDir('store');
after(() => scratch.remove());

const bb = { name: 'bb', from: null, build: { kind: 'busybox' } };
const chroot = (name: string, from: string, commands: string[]): unknown => ({ name, from, build: { kind: 'chroot', commands } });

describe('image store on the busybox test image', { skip }, () => {
  const dataDir = join(scratch.dir, 'data');
  const store = openImageStore(dataDir);
  let defs: string;
  before(() => {
    defs = definitionsDir(scratch.dir, {
      bb,
      // Deletes a file of the base (a whiteout in its upper) and adds one.
      'bb-a': chroot('bb-a', 'bb', ['rm /bin/ls', 'echo a > /etc/a']),
      'bb-b': chroot('bb-b', 'bb', ['mkdir -p /opt/b', 'echo b > /opt/b/x']),
      'bb-fail': chroot('bb-fail', 'bb', ['echo about to fail', 'exit 3']),
      'bb-quiet': chroot('bb-quiet', 'bb', ['echo compiling the world', 'sleep 1', 'touch /quiet']),
    });
  });

  it('builds an image with the mount points, the sandbox user and /box owned by it', async () => {
    const progress: BuildProgress[] = [];
    const [outcome] = await buildImages(['bb'], { store, definitionsDir: defs, onProgress: (p) => progress.push(p) });
    const image = outcome!.image;
    assert.equal(image.layerPaths.length, 1);
    const root = image.layerPaths[0]!;
    for (const d of ['proc', 'dev', 'tmp', 'box', 'sys']) assert.ok(statSync(join(root, d)).isDirectory(), d);
    assert.equal(statSync(join(root, 'box')).uid, 60000);
    assert.equal(statSync(join(root, 'tmp')).mode & 0o1777, 0o1777);
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    assert.match(passwd, /^sandbox:x:60000:60000:/m);
    // Every uid a pool gives its slots is named, as "sandbox", for tools that look it up.
    for (let uid = SANDBOX_UID; uid < SANDBOX_UID + SANDBOX_UID_COUNT; uid++) {
      assert.ok(passwd.includes(`\nsandbox:x:${uid}:60000:`) || uid === 60000, `uid ${uid} in passwd`);
    }
    assert.ok(lstatSync(join(root, 'bin/sh')).isSymbolicLink());
    assert.deepEqual(store.get('bb'), image);
    assert.ok(progress.some((p) => p.phase === 'step' && /busybox/.test(p.message)));
    assert.ok(progress.some((p) => p.phase === 'done'));
  });

  it('does nothing when rebuilding an unchanged definition', async () => {
    const before = store.get('bb')!;
    const layerMtime = statSync(before.layerPaths[0]!).mtimeMs;
    const [outcome] = await buildImages(['bb'], { store, definitionsDir: defs });
    assert.deepEqual(outcome!.builtLayers, []);
    assert.deepEqual(store.get('bb'), before);
    assert.equal(statSync(before.layerPaths[0]!).mtimeMs, layerMtime);
  });

  it('stores a base shared by two images once', async () => {
    const outcomes = await buildImages(['bb-a', 'bb-b'], { store, definitionsDir: defs });
    assert.equal(outcomes.length, 2);
    const a = store.get('bb-a')!;
    const b = store.get('bb-b')!;
    assert.equal(a.layerPaths.length, 2);
    assert.equal(a.layerPaths[0], b.layerPaths[0]);
    assert.equal(a.layerPaths[0], store.get('bb')!.layerPaths[0]);
    assert.notEqual(a.layerPaths[1], b.layerPaths[1]);
    assert.equal(store.layers().length, 3);
    assert.deepEqual(outcomes.map((o) => o.builtLayers.length), [1, 1]);
    assert.deepEqual(store.list().map((i) => i.name), ['bb', 'bb-a', 'bb-b']);
  });

  it('keeps deletions as whiteouts that hide the lower file through overlayfs', () => {
    const a = store.get('bb-a')!;
    const upper = a.layerPaths[1]!;
    const whiteout = lstatSync(join(upper, 'bin/ls'));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'rm of a lower file leaves a 0/0 char device');
    assert.ok(!existsSync(join(upper, 'var/lib/apt')), 'a commands-only layer has no apt state');
    assert.equal(overlayLowerdir(a), `${a.layerPaths[1]}:${a.layerPaths[0]}`);
    const merged = join(scratch.dir, 'merged');
    mkdirSync(merged, { recursive: true });
    execFileSync('mount', ['-t', 'overlay', 'cellblock-test', '-o', `lowerdir=${overlayLowerdir(a)}`, merged]);
    try {
      assert.ok(!existsSync(join(merged, 'bin/ls')), '/bin/ls is deleted in bb-a');
      assert.ok(existsSync(join(merged, 'bin/cat')));
      assert.equal(readFileSync(join(merged, 'etc/a'), 'utf8'), 'a\n');
      assert.equal(statSync(join(merged, 'box')).uid, 60000);
    } finally {
      execFileSync('umount', [merged]);
    }
  });

  it('fails a bad recipe with the step and its output, and leaves no layer, build dir or mount', async () => {
    const layersBefore = store.layers().sort();
    await assert.rejects(buildImages(['bb-fail'], { store, definitionsDir: defs }), (err: unknown) => {
      assert.ok(err instanceof ImageBuildError, String(err));
      assert.equal(err.image, 'bb-fail');
      assert.equal(err.step, 'chroot-layer.sh');
      assert.match(err.detail, /exit status 3/);
      assert.match(err.detail, /about to fail/);
      assert.ok(err.logFile && readFileSync(err.logFile, 'utf8').includes('about to fail'));
      return true;
    });
    assert.equal(store.get('bb-fail'), undefined);
    assert.deepEqual(store.layers().sort(), layersBefore);
    assert.deepEqual(readdirSync(store.layersDir).filter((d) => d.startsWith('.')), []);
    assert.deepEqual(mountsUnder(dataDir), []);
  });

  it('rebuilds only the changed layer when a definition changes', async () => {
    const old = store.get('bb-b')!;
    writeFileSync(join(defs, 'bb-b.json'), JSON.stringify(chroot('bb-b', 'bb', ['mkdir -p /opt/b', 'echo b2 > /opt/b/x'])));
    const [outcome] = await buildImages(['bb-b'], { store, definitionsDir: defs });
    const now = store.get('bb-b')!;
    assert.equal(outcome!.builtLayers.length, 1);
    assert.equal(now.layerPaths[0], old.layerPaths[0]);
    assert.notEqual(now.hash, old.hash);
    assert.equal(readFileSync(join(now.layerPaths[1]!, 'opt/b/x'), 'utf8'), 'b2\n');
  });

  it('prunes layers no image uses, but not while they are mounted', async () => {
    const used = new Set(store.list().flatMap((i) => store.layerHashes(i.name)!));
    const unused = store.layers().filter((h) => !used.has(h));
    assert.equal(unused.length, 1, 'the old top layer of bb-b');
    const merged = join(scratch.dir, 'merged-old');
    mkdirSync(merged, { recursive: true });
    execFileSync('mount', ['-t', 'overlay', 'cellblock-test', '-o', `lowerdir=${store.layerRoot(unused[0]!)}:${store.get('bb')!.layerPaths[0]}`, merged]);
    try {
      const kept = await pruneLayers(store);
      assert.deepEqual(kept, { removed: [], keptMounted: unused, freedBytes: 0 });
    } finally {
      execFileSync('umount', [merged]);
    }
    const pruned = await pruneLayers(store);
    assert.deepEqual(pruned.removed, unused);
    assert.ok(pruned.freedBytes > 0);
    assert.deepEqual(store.layers().sort(), [...used].sort());
    for (const name of ['bb', 'bb-a', 'bb-b']) assert.ok(store.get(name), name);
  });

  it('reports a long silent step as still working, with its last output line', async () => {
    const progress: BuildProgress[] = [];
    await buildImages(['bb-quiet'], { store, definitionsDir: defs, heartbeatMs: 200, onProgress: (p) => progress.push(p) });
    const heartbeats = progress.filter((p) => p.phase === 'heartbeat');
    assert.ok(heartbeats.length >= 2, `heartbeats during a 1 s silence: ${heartbeats.length}`);
    for (const h of heartbeats) assert.match(h.message, /^still building layer [0-9a-f]{12} \(\d+ s\)/);
    // During the silence the heartbeat repeats the last thing the recipe said.
    assert.ok(heartbeats.some((h) => h.message.endsWith(': compiling the world')), heartbeats.map((h) => h.message).join('\n'));
    const phases = progress.map((p) => p.phase);
    assert.ok(phases.indexOf('heartbeat') > phases.indexOf('plan') && phases.lastIndexOf('heartbeat') < phases.indexOf('done'));
  });

  it('rejects unknown image names before building anything', async () => {
    await assert.rejects(buildImages(['bb', 'nope'], { store, definitionsDir: defs }), UnknownImageError);
  });

  it('serializes builds of one data dir and takes over the lock of a dead builder', async () => {
    writeFileSync(join(dataDir, 'build.lock'), '999999999\n');
    const release = await acquireBuildLock(dataDir, 0);
    await assert.rejects(acquireBuildLock(dataDir, 0), (err: unknown) => err instanceof ImageStoreError && /holds/.test(err.message));
    const waiting = acquireBuildLock(dataDir, 10_000);
    setTimeout(release, 200);
    (await waiting)();
    assert.ok(!existsSync(join(dataDir, 'build.lock')));
  });

  it('takes a dead builder\'s lock over one builder at a time, and never a lock taken since', () => {
    const lock = join(dataDir, 'build.lock');
    const dead = 999999999;
    // A builder that saw the dead holder, while another took the lock over in between: it must
    // not remove the new holder's lock.
    writeFileSync(lock, `${process.pid}\n`);
    assert.equal(removeStaleLock(lock, dead), true);
    assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`, 'the live holder keeps its lock');
    // Still the dead one's: removed.
    writeFileSync(lock, `${dead}\n`);
    assert.equal(removeStaleLock(lock, dead), true);
    assert.ok(!existsSync(lock));
    // Another builder taking over right now: nothing is removed.
    writeFileSync(lock, `${dead}\n`);
    writeFileSync(`${lock}.takeover`, '1\n');
    assert.equal(removeStaleLock(lock, dead), false);
    assert.ok(existsSync(lock));
    // A takeover left by a builder that died in it (old): removed, and the next try goes through.
    const longAgo = new Date(Date.now() - 60_000);
    utimesSync(`${lock}.takeover`, longAgo, longAgo);
    assert.equal(removeStaleLock(lock, dead), false);
    assert.equal(removeStaleLock(lock, dead), true);
    assert.ok(!existsSync(lock) && !existsSync(`${lock}.takeover`));
  });

  it('takes over the lock of a builder that died but was not reaped (a zombie)', async () => {
    // The shell forks a short `sleep` and execs into a long one, which never waits: the short one
    // ends as a zombie. (It must outlive the exec: a child that ends first may be reaped by the
    // shell, and then there is no zombie, nor any /proc entry, to look at.)
    const parent = spawn('/bin/sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number((await once(parent.stdout, 'data'))[0].toString().trim());
      const state = () => processState(zombie);
      for (let i = 0; i < 100 && state() !== 'Z'; i++) await sleep(20);
      assert.equal(state(), 'Z');
      writeFileSync(join(dataDir, 'build.lock'), `${zombie}\n`);
      (await acquireBuildLock(dataDir, 0))();
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('image store paths', () => {
  it('refuse a data dir that overlayfs options cannot carry', () => {
    assert.throws(() => openImageStore('relative/dir'), ImageStoreError);
    assert.throws(() => openImageStore('/var/lib/a:b'), ImageStoreError);
    assert.throws(() => openImageStore('/var/lib/a,b'), ImageStoreError);
  });

  it('return nothing for names that are not image names', () => {
    const store = openImageStore(join(scratch.dir, 'empty'));
    assert.equal(store.get('../../etc/passwd'), undefined);
    assert.deepEqual(store.list(), []);
  });
});
