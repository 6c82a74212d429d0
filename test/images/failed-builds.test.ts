// Builds that do not finish: a builder killed in the middle of a layer, one stopped there by
// SIGTERM or by Ctrl-C (SIGINT to its process group), or by SIGINT while it waits for the lock,
// and a base whose Debian mirror cannot be reached. None may leave a layer in use, a process
// running, a mount or the lock held.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireBuildLock } from '../../src/images/build-lock.js';
import { buildImages } from '../../src/images/builder.js';
import { ImageBuildError } from '../../src/images/errors.js';
import { repoRoot } from '../../src/images/paths.js';
import { openImageStore } from '../../src/images/store.js';
import { dyingWithParent } from '../../src/parent-death.js';
import { outputOf } from '../helpers/processes.js';
import { definitionsDir, mountsUnder, scratchDir, whyNoLayerBuilds } from './helpers.js';

const skip = whyNoLayerBuilds();
const scratch = scratchDir('failed-builds');

/** Pids of processes whose command line or root directory lies in `dir`. */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const root = readlinkSync(`/proc/${entry}/root`);
      if (cmdline.includes(dir) || root.startsWith(`${dir}/`)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or a kernel thread.
    }
  }
  return pids;
}

/** Builders the tests spawned, killed by pid in teardown if one is left. */
const builders = new Set<number>();

after(() => {
  // Only when the test failed: whatever our builds left running, by pid.
  for (const pid of new Set([...builders, ...processesUsing(scratch.dir)])) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  scratch.remove();
});

/** `cellblock images build --verbose` of `names` (the command's own code, with a definitions dir
 * of the test's), in a process of its own. */
function spawnBuildCommand(dataDir: string, defs: string, names: string[]): { builder: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null> } {
  const script = [
    `import { buildCommand } from ${JSON.stringify(join(repoRoot(), 'src/images/cli.ts'))};`,
    `import { openImageStore } from ${JSON.stringify(join(repoRoot(), 'src/images/store.ts'))};`,
    `process.exitCode = await buildCommand(${JSON.stringify(names)}, openImageStore(${JSON.stringify(dataDir)}), ${JSON.stringify(defs)}, true);`,
  ].join('\n');
  // A process group of its own, as a command run from a terminal has: Ctrl-C's SIGINT goes to it
  // whole. Outside ours, it would outlive a test run stopped before its teardown: it dies with us.
  const command = dyingWithParent('TERM', process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  const builder = spawn(command.file, command.args, { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  builders.add(builder.pid!);
  const { stdout, stderr } = outputOf(builder);
  const exited = new Promise<number | null>((resolve) =>
    builder.once('exit', (code) => {
      builders.delete(builder.pid!);
      resolve(code);
    }),
  );
  return { builder, stdout, stderr, exited };
}

/** Resolves once `text()` matches, failing after 60 s or when the process has exited. */
async function until(what: string, text: () => string, pattern: RegExp, builder: ChildProcess): Promise<void> {
  for (const deadline = Date.now() + 60_000; !pattern.test(text()); await sleep(50)) {
    if (builder.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not happen:\n${text()}`);
  }
}

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('builds that do not finish', { skip }, () => {
  const dataDir = join(scratch.dir, 'data');
  const store = openImageStore(dataDir);
  const defs = definitionsDir(scratch.dir, {
    bb: { name: 'bb', from: null, build: { kind: 'busybox' } },
    'bb-slow': { name: 'bb-slow', from: 'bb', build: { kind: 'chroot', commands: ['echo half > /half-built', 'echo cellblock-layer-started', 'sleep 600'] } },
  });

  it('a builder killed in the middle of a layer takes its recipe with it and leaves no layer in use', async () => {
    const script = [
      `import { buildImages } from ${JSON.stringify(join(repoRoot(), 'src/images/builder.ts'))};`,
      `import { openImageStore } from ${JSON.stringify(join(repoRoot(), 'src/images/store.ts'))};`,
      `await buildImages(['bb-slow'], { store: openImageStore(${JSON.stringify(dataDir)}), definitionsDir: ${JSON.stringify(defs)},`,
      `  onProgress: (p) => process.stdout.write(p.message + '\\n') });`,
    ].join('\n');
    const builder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'inherit'] });
    builders.add(builder.pid!);
    builder.once('exit', () => builders.delete(builder.pid!));
    let output = '';
    const started = new Promise<void>((resolve, reject) => {
      builder.stdout.setEncoding('utf8');
      builder.stdout.on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('cellblock-layer-started')) resolve();
      });
      builder.on('exit', (code) => reject(new Error(`builder exited (${code}) before the layer's commands ran:\n${output}`)));
    });
    await started;
    assert.ok(processesUsing(dataDir).length > 0, 'the recipe runs while the builder is alive');
    const exited = new Promise((resolve) => builder.once('exit', resolve));
    builder.kill('SIGKILL');
    await exited;

    // The recipe's unshare dies with the builder, and its PID namespace with it.
    const deadline = Date.now() + 5_000;
    while (processesUsing(dataDir).length > 0 && Date.now() < deadline) await sleep(50);
    assert.deepEqual(processesUsing(dataDir), [], 'processes of the killed build still run');
    assert.deepEqual(mountsUnder(dataDir), []);
    assert.equal(store.get('bb-slow'), undefined);
    const halfBuilt = readdirSync(store.layersDir).filter((d) => d.startsWith('.build-'));
    assert.equal(halfBuilt.length, 1, 'the interrupted layer stays in its build dir');
    assert.ok(store.layers().every((h) => store.layerRecord(h)?.build.kind === 'busybox'), 'only the finished base is a layer');

    // The next build (without a wait: the kernel released the dead builder's flock) clears the
    // half-built layer away, and an image record's temporary file, which a builder killed as it
    // wrote the record would leave.
    writeFileSync(join(store.imagesDir, 'bb-slow.json.tmp-4194303'), '{"name": "bb-slow", ');
    const [outcome] = await buildImages(['bb'], { store, definitionsDir: defs, lockWaitMs: 0 });
    assert.deepEqual(outcome!.builtLayers, []);
    assert.deepEqual(readdirSync(store.layersDir).filter((d) => d.startsWith('.')), []);
    assert.deepEqual(readdirSync(store.imagesDir).filter((f) => !f.endsWith('.json')), []);
  });

  for (const [stop, signal] of [['SIGTERM to the builder', 'SIGTERM'], ["Ctrl-C (SIGINT to the builder's whole process group)", 'SIGINT']] as const) {
    it(`a build stopped by ${stop} in the middle of a layer kills its recipe, removes the layer and releases the lock before it exits`, { timeout: 120_000 }, async () => {
      const before = store.layers().sort();
      const run = spawnBuildCommand(dataDir, defs, ['bb-slow']);
      await until('the layer\'s commands', run.stdout, /cellblock-layer-started/, run.builder);
      assert.ok(processesUsing(dataDir).some((pid) => pid !== run.builder.pid), 'the recipe runs');
      // The recipe runs in a process group of its own: Ctrl-C reaches the builder alone, which
      // stops the recipe in order rather than failing as a recipe killed by SIGINT.
      if (signal === 'SIGINT') process.kill(-run.builder.pid!, 'SIGINT');
      else run.builder.kill('SIGTERM');
      assert.equal(await run.exited, 128 + constants.signals[signal], run.stderr());
      assert.match(run.stderr(), new RegExp(`build stopped by ${signal}: the layers finished so far are kept`));
      // All done by the builder before it exited: nothing is left for the next build to clear.
      assert.deepEqual(processesUsing(dataDir), [], 'processes of the stopped build still run');
      assert.deepEqual(mountsUnder(dataDir), []);
      assert.deepEqual(readdirSync(store.layersDir).filter((d) => d.startsWith('.')), [], 'the unfinished layer was removed');
      assert.deepEqual(store.layers().sort(), before, 'the finished layers are kept, no other stored');
      assert.equal(store.get('bb-slow'), undefined);
      (await acquireBuildLock(dataDir, 0))();
    });
  }

  it('a build stopped by SIGINT while it waits for another build\'s lock exits at once', { timeout: 120_000 }, async () => {
    const release = await acquireBuildLock(dataDir, 0);
    try {
      const run = spawnBuildCommand(dataDir, defs, ['bb']);
      await until('the wait', run.stdout, new RegExp(`waiting for another build \\(pid ${process.pid}\\)`), run.builder);
      run.builder.kill('SIGINT');
      assert.equal(await run.exited, 128 + constants.signals.SIGINT, run.stderr());
      assert.match(run.stderr(), /build stopped by SIGINT/);
    } finally {
      release();
    }
  });

  it('a base whose Debian mirror cannot be reached fails with debootstrap\'s message, storing nothing', async () => {
    const mirror = `http://127.0.0.1:${await closedPort()}/debian`;
    const debianDefs = definitionsDir(join(scratch.dir, 'debian'), {
      deb: { name: 'deb', from: null, build: { kind: 'debootstrap', suite: 'bookworm', variant: 'minbase' } },
    });
    const layersBefore = store.layers().sort();
    await assert.rejects(
      buildImages(['deb'], { store, definitionsDir: debianDefs, env: { ...process.env, CELLBLOCK_DEBIAN_MIRROR: mirror } }),
      (err: unknown) => {
        assert.ok(err instanceof ImageBuildError, String(err));
        assert.equal(err.step, 'debootstrap-layer.sh');
        assert.match(err.detail, /exit status [1-9]/);
        assert.match(err.detail, /Failed getting release file/);
        assert.ok(err.message.includes(mirror.replace('/debian', '')), 'the message names the mirror');
        return true;
      },
    );
    assert.equal(store.get('deb'), undefined);
    assert.deepEqual(store.layers().sort(), layersBefore);
    assert.deepEqual(readdirSync(store.layersDir).filter((d) => d.startsWith('.')), []);
    assert.deepEqual(mountsUnder(dataDir), []);
  });
});
