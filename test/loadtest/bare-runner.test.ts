// The load test's bare side (loadtest/service/bare-runner.c through bare.ts): a program of an
// image runs from that image's files, chrooted in its layers, so that the service's figures are
// compared with the same program and not with the host's build of it; its mounts die with the
// runner; and every load test scenario's bare program runs in it. Builds the images it needs
// when the data dir lacks them (python; the scenarios' gcc and java; a no-op otherwise).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImages } from '../../src/images/builder.js';
import { dataDirFromEnv, defaultDefinitionsDir } from '../../src/images/paths.js';
import { openImageStore } from '../../src/images/store.js';
import { createBareRunner, type BareRunner } from '../../loadtest/service/bare.js';
import { scenarios, type BareProgram } from '../../loadtest/service/scenarios.js';

const dataDir = dataDirFromEnv();
const notRoot = process.getuid?.() !== 0 ? 'needs root (mounts, chroot)' : false;

/** Exits 0 only where the host's dir `hostDir` cannot be seen, the work dir holds this file and a
 * proc is mounted (as in the container: the java launcher needs /proc/self/exe). */
function chrootedCheck(hostDir: string): BareProgram['files'] {
  return {
    'check.py': `import os, sys\nsys.exit(0 if not os.path.exists(${JSON.stringify(hostDir)}) and os.path.exists('check.py') and os.path.exists('/proc/self/exe') else 3)\n`,
  };
}

describe('the load test\'s bare runner', { skip: notRoot }, () => {
  let runner: BareRunner;
  let hostDir: string;

  before(async () => {
    await buildImages(['python'], { store: openImageStore(dataDir), definitionsDir: defaultDefinitionsDir() });
    runner = await createBareRunner(dataDir);
    hostDir = mkdtempSync(join(os.tmpdir(), 'cellblock-bare-test-'));
  });

  after(() => {
    runner?.close();
    if (hostDir) rmSync(hostDir, { recursive: true, force: true });
  });

  const program = (image: string | undefined): BareProgram => ({
    ...(image ? { image } : {}),
    files: chrootedCheck(hostDir),
    commands: [['/usr/bin/python3', 'check.py']],
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
  });

  it('runs an image\'s program inside the image: the host\'s files are out of its sight', async () => {
    const run = await runner.run(program('python'), { runs: 4, loops: 2, gapMs: 0 });
    assert.equal(run.latenciesMs.length, 4);
    assert.equal(run.failures, 0, 'every run exited 0: it saw its work dir and a proc, not the host');
    const forked = await runner.run(program('python'), { runs: 2, loops: 1, gapMs: 0, spawnWith: 'fork' });
    assert.equal(forked.failures, 0);
  });

  it('reports each run\'s CPU time apart from its wall time, the descendants it reaped included', async () => {
    const python = (code: string): BareProgram => ({
      image: 'python',
      files: {},
      commands: [['/usr/bin/python3', '-c', code]],
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
    });
    // The work is a grandchild's: python runs a second python, which spins until it has used
    // 300 ms of CPU, however long that takes on a busy machine (a bound on wall time would not hold).
    const busy = await runner.run(python('import subprocess, sys; subprocess.run([sys.executable, "-c", "import time\\nwhile time.process_time() < 0.3: pass"], check=True)'), { runs: 1, loops: 1, gapMs: 0 });
    assert.equal(busy.failures, 0);
    const [busyWallMs, busyCpuMs] = [busy.latenciesMs[0]!, busy.cpuMs[0]!];
    assert.ok(busyCpuMs >= 300 && busyCpuMs <= busyWallMs * 1.1 + 5, `busy: ${busyCpuMs} ms of CPU in ${busyWallMs} ms`);
    const sleeper = await runner.run(python('import time; time.sleep(0.5)'), { runs: 1, loops: 1, gapMs: 0 });
    assert.equal(sleeper.failures, 0);
    const [sleeperWallMs, sleeperCpuMs] = [sleeper.latenciesMs[0]!, sleeper.cpuMs[0]!];
    assert.ok(sleeperWallMs >= 500 && sleeperCpuMs < sleeperWallMs - 300, `sleeper: ${sleeperCpuMs} ms of CPU in ${sleeperWallMs} ms`);
  });

  it('sleeps the gap before every run, the first one too: each follows the same idle', async () => {
    const run = await runner.run(program('python'), { runs: 2, loops: 1, gapMs: 300 });
    assert.equal(run.failures, 0);
    assert.ok(run.elapsedMs >= 600, `two runs with 300 ms gaps took ${run.elapsedMs} ms`);
  });

  it('counts a run whose program fails (the same check run on the host sees the host)', async () => {
    const run = await runner.run(program(undefined), { runs: 2, loops: 1, gapMs: 0 });
    assert.equal(run.failures, 2);
  });

  it('leaves no mount behind: the image root lived in the runner\'s own mount namespace', async () => {
    await runner.run(program('python'), { runs: 1, loops: 1, gapMs: 0 });
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    assert.doesNotMatch(mounts, /cellblock-bench\/bare-runner-/);
  });

  it('runs every scenario\'s bare program (compile and run where the runtime compiles) to exit 0', async () => {
    const images = [...new Set(scenarios.flatMap((scenario) => (scenario.bare.image ? [scenario.bare.image] : [])))];
    await buildImages(images, { store: openImageStore(dataDir), definitionsDir: defaultDefinitionsDir() });
    for (const scenario of scenarios) {
      const run = await runner.run(scenario.bare, { runs: 1, loops: 1, gapMs: 0 });
      assert.deepEqual([run.latenciesMs.length, run.failures], [1, 0], `${scenario.name}: one run, exit 0`);
    }
  });

  it('refuses an image that is not built, naming it', async () => {
    await assert.rejects(runner.run(program('no-such-image'), { runs: 1, loops: 1, gapMs: 0 }), /image no-such-image is not built/);
  });
});
