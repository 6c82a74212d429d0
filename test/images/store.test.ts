// The layer store and the builder on the tiny busybox image: real builds (recipes in private
// namespaces, overlay chroot layers), content-addressed sharing, no-op rebuilds, whiteouts, and
// failed builds that leave nothing behind.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SANDBOX_UID } from '../../src/pool/root.js';
import { SANDBOX_UID_COUNT } from '../../src/pool/uid-leases.js';
import { acquireBuildLock } from '../../src/images/build-lock.js';
import { buildImages } from '../../src/images/builder.js';
import { DataDirError, ImageBuildError, ImageStoreError, UnknownImageError } from '../../src/images/errors.js';
import { repoRoot } from '../../src/images/paths.js';
import { pruneLayers } from '../../src/images/prune.js';
import { openImageStore, overlayLowerdir } from '../../src/images/store.js';
import type { BuildProgress } from '../../src/images/types.js';
import { definitionsDir, mountsUnder, scratchDir, whyNoLayerBuilds } from './helpers.js';
import { outputOf } from '../helpers/processes.js';

const skip = whyNoLayerBuilds();

function whyNoPidNamespace(): string | undefined {
  try {
    execFileSync('unshare', ['--pid', '--fork', '--kill-child', 'true'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'unshare --pid --fork does not work here (root needed)';
  }
}
const scratch = scratchDir('store');
after(() => scratch.remove());

const bb = { name: 'bb', from: null, build: { kind: 'busybox' } };
const chroot = (name: string, from: string, commands: string[]): unknown => ({ name, from, build: { kind: 'chroot', commands } });
/** A layer's commands that note in it when they began and ended (the machine's uptime, s), a
 * second apart. */
const notesWhenItRan = ['cut -d" " -f1 /proc/uptime > /began', 'sleep 1', 'cut -d" " -f1 /proc/uptime > /ended'];

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
      // A layer two images share, each image's own above it: each notes when it ran (the
      // machine's uptime, in its own layer).
      'bb-mid': chroot('bb-mid', 'bb', ['echo mid > /mid']),
      'bb-c1': chroot('bb-c1', 'bb-mid', ['echo c1 > /c', ...notesWhenItRan]),
      'bb-c2': chroot('bb-c2', 'bb-mid', ['echo c2 > /c', ...notesWhenItRan]),
      'bb-long': chroot('bb-long', 'bb', ['echo building for a minute', 'sleep 60', 'touch /long']),
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

  it('builds images side by side, a layer they share once, up to layersAtOnce at a time', async () => {
    const ran = (image: string, file: string) => Number(readFileSync(join(store.get(image)!.layerPaths.at(-1)!, file), 'utf8'));
    await buildImages(['bb'], { store, definitionsDir: defs });
    const outcomes = await buildImages(['bb-c1', 'bb-c2'], { store, definitionsDir: defs, layersAtOnce: 2 });
    const mid = store.get('bb-c1')!.layerPaths[1]!;
    assert.equal(store.get('bb-c2')!.layerPaths[1], mid, 'one bb-mid under both');
    assert.deepEqual(outcomes.map((o) => o.builtLayers.length), [2, 1], 'bb-mid built once, by the first to ask');
    // Each slept a second: their runs overlapped.
    assert.ok(ran('bb-c1', 'began') < ran('bb-c2', 'ended') && ran('bb-c2', 'began') < ran('bb-c1', 'ended'), 'side by side');
    // One at a time (definitions of their own, the same base and bb-mid, stored; the two above
    // them changed): one after the other.
    const oneAtATime = definitionsDir(join(scratch.dir, 'one-at-a-time'), {
      bb,
      'bb-mid': chroot('bb-mid', 'bb', ['echo mid > /mid']),
      'bb-c1': chroot('bb-c1', 'bb-mid', ['echo c1 > /c', ...notesWhenItRan, 'true']),
      'bb-c2': chroot('bb-c2', 'bb-mid', ['echo c2 > /c', ...notesWhenItRan, 'true']),
    });
    const serial = await buildImages(['bb-c1', 'bb-c2'], { store, definitionsDir: oneAtATime, layersAtOnce: 1 });
    assert.deepEqual(serial.map((o) => o.builtLayers.length), [1, 1]);
    assert.ok(ran('bb-c1', 'ended') <= ran('bb-c2', 'began') || ran('bb-c2', 'ended') <= ran('bb-c1', 'began'), 'one after the other');
  });

  it("removes the .debs every image once shared in cache/apt (each image has its own dir there now)", async () => {
    const shared = join(store.cacheDir, 'apt');
    mkdirSync(join(shared, 'python'), { recursive: true });
    writeFileSync(join(shared, 'old_1.0_amd64.deb'), 'a .deb of before');
    writeFileSync(join(shared, 'python', 'kept_1.0_amd64.deb'), "an image's own");
    await buildImages(['bb'], { store, definitionsDir: defs });
    assert.deepEqual(readdirSync(shared), ['python']);
    assert.deepEqual(readdirSync(join(shared, 'python')), ['kept_1.0_amd64.deb']);
  });

  it('stops the layers building beside a failed one, and throws that failure', async () => {
    const layersBefore = store.layers().sort();
    const started = Date.now();
    await assert.rejects(buildImages(['bb-long', 'bb-fail'], { store, definitionsDir: defs, layersAtOnce: 2 }), (err: unknown) => {
      assert.ok(err instanceof ImageBuildError, String(err));
      assert.equal(err.image, 'bb-fail');
      return true;
    });
    assert.ok(Date.now() - started < 30_000, `stopped in ${Date.now() - started} ms, not after bb-long's minute`);
    assert.equal(store.get('bb-long'), undefined);
    assert.deepEqual(store.layers().sort(), layersBefore);
    assert.deepEqual(readdirSync(store.layersDir).filter((d) => d.startsWith('.')), []);
    assert.deepEqual(mountsUnder(dataDir), []);
  });

  it('rejects unknown image names before building anything', async () => {
    await assert.rejects(buildImages(['bb', 'nope'], { store, definitionsDir: defs }), UnknownImageError);
  });
});

describe('build lock', () => {
  const dataDir = join(scratch.dir, 'lock');
  const lock = join(dataDir, 'build.lock');
  mkdirSync(dataDir, { recursive: true });
  /** Lock holders this describe started, killed by pid in teardown if a test left one. */
  const holders = new Set<number>();
  after(() => {
    for (const pid of holders) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });

  /** Another process that takes the build lock and holds it until it is killed; with
   * `pidNamespace`, as pid 1 of a PID namespace of its own (a builder in a container): `pid` is
   * its pid here, what it wrote in the lock file is 1. */
  async function holder(options: { pidNamespace?: boolean } = {}): Promise<{ child: ChildProcess; exited: Promise<unknown>; pid: number }> {
    const script = [
      `import { readlinkSync } from 'node:fs';`,
      `import { acquireBuildLock } from ${JSON.stringify(join(repoRoot(), 'src/images/build-lock.ts'))};`,
      `await acquireBuildLock(${JSON.stringify(dataDir)}, 0);`,
      // The host's /proc (not remounted): /proc/self names this process's pid out there.
      `process.stdout.write('locked ' + readlinkSync('/proc/self') + '\\n');`,
      'setInterval(() => {}, 1 << 30);',
    ].join('\n');
    const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
    const argv = options.pidNamespace ? ['unshare', '--pid', '--fork', '--kill-child', ...node] : node;
    // stderr kept for the failure's message (unshare's complaint when its child is killed is not).
    const child = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    holders.add(child.pid!);
    const exited = once(child, 'exit').finally(() => holders.delete(child.pid!));
    const output = outputOf(child);
    let match: RegExpMatchArray | null;
    for (const deadline = Date.now() + 20_000; !(match = output.stdout().match(/^locked (\d+)\n/)); await sleep(20)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the lock holder did not take the lock: ${output.stdout()}${output.stderr()}`);
    }
    const pid = Number(match[1]);
    holders.add(pid);
    return { child, exited, pid };
  }

  it('serializes builders of one process too, and lets the next in on release', async () => {
    const release = await acquireBuildLock(dataDir, 0);
    await assert.rejects(acquireBuildLock(dataDir, 0), (err: unknown) => err instanceof ImageStoreError && /holds/.test(err.message));
    const waiting = acquireBuildLock(dataDir, 10_000);
    setTimeout(release, 200);
    (await waiting)();
    // The file stays (removing a lock file others take would race); it names the last holder.
    assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`);
    (await acquireBuildLock(dataDir, 0))();
  });

  it('is free at once when its holder was killed, whatever pid the file names', async () => {
    const { child, exited } = await holder();
    assert.equal(readFileSync(lock, 'utf8'), `${child.pid}\n`);
    await assert.rejects(acquireBuildLock(dataDir, 0), ImageStoreError);
    child.kill('SIGKILL');
    await exited;
    // The dead builder's pid is still in the file: it does not matter.
    assert.equal(readFileSync(lock, 'utf8'), `${child.pid}\n`);
    const started = Date.now();
    const waits: (number | undefined)[] = [];
    (await acquireBuildLock(dataDir, 0, (pid) => waits.push(pid)))();
    assert.deepEqual(waits, [], 'no wait for a dead builder');
    assert.ok(Date.now() - started < 1_000);
  });

  it('is free when the file names our own pid and no one holds it (a restarted container\'s builder given its old pid)', async () => {
    // Also a live process's pid (init's, a pid reused after a reboot), and the old pid-file
    // format's leftovers: only the flock counts.
    for (const named of [process.pid, 1, process.ppid]) {
      writeFileSync(lock, `${named}\n`);
      const waits: (number | undefined)[] = [];
      const release = await acquireBuildLock(dataDir, 0, (pid) => waits.push(pid));
      assert.deepEqual(waits, [], `no wait for a lock naming pid ${named}`);
      assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`);
      release();
    }
  });

  it('excludes a builder in another PID namespace, and is free once it dies though the pid it wrote lives here', { skip: whyNoPidNamespace() }, async () => {
    // The compose case: a container's builder is pid 1 (or another low pid) of its namespace.
    const { child, exited, pid } = await holder({ pidNamespace: true });
    try {
      assert.equal(readFileSync(lock, 'utf8'), '1\n');
      await assert.rejects(acquireBuildLock(dataDir, 0), (err: unknown) => err instanceof ImageStoreError && err.message.includes('(pid 1)'));
      process.kill(pid, 'SIGKILL');
      await exited; // unshare waits for its child
      (await acquireBuildLock(dataDir, 0))();
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('waits for a live builder in another process, naming its pid, then times out', async () => {
    const { child, exited } = await holder();
    try {
      const waits: (number | undefined)[] = [];
      const started = Date.now();
      await assert.rejects(acquireBuildLock(dataDir, 1_200, (pid) => waits.push(pid)), (err: unknown) => {
        assert.ok(err instanceof ImageStoreError, String(err));
        assert.equal(err.message, `another image build (pid ${child.pid}) holds ${lock}`);
        return true;
      });
      assert.ok(Date.now() - started >= 1_200, 'it waited');
      assert.deepEqual(waits, [child.pid], 'told once, with the holder\'s pid');
      // A waiter gets the lock once the holder dies (killed here, mid-wait).
      const waiting = acquireBuildLock(dataDir, 20_000);
      await sleep(300);
      child.kill('SIGKILL');
      (await waiting)();
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('ends a wait when asked to stop, with the stop\'s reason', async () => {
    const { child, exited } = await holder();
    try {
      const controller = new AbortController();
      const stop = new Error('stopped');
      setTimeout(() => controller.abort(stop), 200);
      const started = Date.now();
      await assert.rejects(acquireBuildLock(dataDir, 20_000, () => {}, controller.signal), (err) => err === stop);
      assert.ok(Date.now() - started < 2_000);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});

describe('image store paths', () => {
  it('refuse a data dir that overlayfs options cannot carry', () => {
    assert.throws(() => openImageStore('relative/dir'), DataDirError);
    assert.throws(() => openImageStore('/var/lib/a:b'), DataDirError);
    assert.throws(() => openImageStore('/var/lib/a,b'), DataDirError);
  });

  it('return nothing for names that are not image names', () => {
    const store = openImageStore(join(scratch.dir, 'empty'));
    assert.equal(store.get('../../etc/passwd'), undefined);
    assert.deepEqual(store.list(), []);
  });
});
