// Connected runs (Sandbox.runConnected): two programs at once, each one's stdout the other's
// stdin, as an interactive problem's solution and interactor run.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxSpecError, type RunResult, type RunSpec } from '../../src/sandbox/index.js';
import { initOfProgram } from '../helpers/processes.js';
import { until } from '../helpers/until.js';
import { DEFAULT_LIMITS, skip, text, useFixture } from './fixture.js';

describe('sandbox: connected runs', { skip }, () => {
  const f = useFixture();

  const spec = (script: string, limits: Partial<RunSpec['limits']> = {}): RunSpec => ({
    rootDir: f.rootDir,
    workDirHostPath: f.workDir(),
    argv: ['/bin/sh', '-c', script],
    limits: { ...DEFAULT_LIMITS, ...limits },
  });
  const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;

  it("gives each program the other's output as its input, both streams both ways", async () => {
    // A first run opens what the sandbox keeps open for all (its cgroup files, the event loop's).
    // Its container is destroyed a little after its result.
    await f.run(['/bin/true']);
    await sleep(200);
    const before = openDescriptors();
    const [solution, interactor] = await f.sandbox.runConnected(
      spec('read n; echo $((n * 2)); read verdict; echo "told $verdict" >&2'),
      spec('echo 21; read answer; echo "got $answer" >&2; if [ "$answer" = 42 ]; then echo right; exit 0; fi; echo wrong; exit 1'),
    );
    assert.deepEqual([solution.verdict, interactor.verdict], ['ok', 'ok']);
    assert.equal(text(interactor.stderr), 'got 42\n');
    assert.equal(text(solution.stderr), 'told right\n');
    // Their stdout went to the peer: nothing of it is kept.
    assert.deepEqual([solution.stdout.length, interactor.stdout.length], [0, 0]);
    assert.ok(solution.metrics.wallTimeMs > 0 && interactor.metrics.wallTimeMs > 0);
    // The containers' own descriptors go with them, destroyed a little after the results.
    await until(() => openDescriptors() === before, 2000, 5, 'every descriptor of the run closed');
  });

  it('ends each side with end of file when its peer is gone, not with the wall limit', async () => {
    const [solution, interactor] = await f.sandbox.runConnected(
      spec('exit 3'),
      spec('if read line; then exit 0; fi; echo "end of file" >&2; exit 1', { wallTimeMs: 5000 }),
    );
    assert.deepEqual([solution.verdict, solution.exitCode], ['runtime_error', 3]);
    assert.deepEqual([interactor.verdict, interactor.exitCode], ['runtime_error', 1]);
    assert.equal(text(interactor.stderr), 'end of file\n');
    // Under a second: a container not destroyed ends on its own a second after its result, and
    // with it any copy of the pipe's write end its init might have kept.
    assert.ok(interactor.metrics.wallTimeMs < 800, `the interactor read EOF at once (${interactor.metrics.wallTimeMs} ms)`);
  });

  it("ends a side whose init is killed mid-run as internal_error (init_died); its peer reads end of file", async () => {
    const marker = 'connected-cut-short-by-init-death';
    const running = f.sandbox.runConnected(spec(`sleep 10; exit 0 # ${marker}`, { wallTimeMs: 30_000 }), spec('cat; echo "end of file" >&2'));
    let init: number | undefined;
    await until(() => (init = initOfProgram(marker)) !== undefined, 5000, 5, 'the first side running, its init found');
    process.kill(init!, 'SIGKILL');
    const [solution, interactor] = await running;
    assert.equal(solution.verdict, 'internal_error');
    assert.deepEqual([solution.error?.step, solution.error?.code], ['init_died', 'ESRCH']);
    assert.deepEqual([interactor.verdict, text(interactor.stderr)], ['ok', 'end of file\n']);
  });

  it('kills a program writing to a peer that is gone with SIGPIPE', async () => {
    const [solution, interactor] = await f.sandbox.runConnected(
      spec('sleep 0.2; while :; do echo more; done'),
      spec('exit 0'),
    );
    assert.equal(interactor.verdict, 'ok');
    assert.deepEqual([solution.verdict, solution.signalName], ['signaled', 'SIGPIPE']);
    assert.ok(solution.metrics.wallTimeMs < 800, `SIGPIPE at the first write after the peer ended (${solution.metrics.wallTimeMs} ms)`);
  });

  it('starts a side with SIGPIPE ignored when asked: its write to a peer that is gone fails instead', async () => {
    const [solution, interactor] = await f.sandbox.runConnected(spec('exit 0'), { ...spec('sleep 0.2; echo more || exit 9'), ignoreSigpipe: true });
    assert.equal(solution.verdict, 'ok');
    assert.deepEqual([interactor.verdict, interactor.exitCode], ['runtime_error', 9]);
  });

  it('ends a deadlock (both reading) with the first wall limit; the other side then reads end of file', async () => {
    const results: RunResult[] = await f.sandbox.runConnected(spec('read x', { wallTimeMs: 300 }), spec('read y; exit 7', { wallTimeMs: 5000 }));
    assert.deepEqual(
      results.map((r) => [r.verdict, r.exitCode]),
      [['wall_time_limit', null], ['runtime_error', 7]],
    );
    assert.ok(results[1]!.metrics.wallTimeMs < 1100, `end of file as the first side was killed (${results[1]!.metrics.wallTimeMs} ms)`);
  });

  it('keeps each side to its own limits: an output flood on stderr, a CPU limit', async () => {
    const [flood, spin] = await f.sandbox.runConnected(
      spec('while :; do echo xxxxxxxxxxxxxxx >&2; done', { outputBytes: 1000 }),
      spec('while :; do :; done', { cpuTimeMs: 200 }),
    );
    assert.deepEqual([flood.verdict, flood.stderr.length, flood.stderrTruncated], ['output_limit', 1000, true]);
    assert.equal(spin.verdict, 'cpu_time_limit');
  });

  it('refuses stdin and stderrToStdout, which the pipes take the place of', async () => {
    await assert.rejects(f.sandbox.runConnected({ ...spec('true'), stdin: 'x' }, spec('true')), (error: unknown) => {
      assert.ok(error instanceof SandboxSpecError);
      assert.equal(error.field, 'first.stdin');
      return true;
    });
    await assert.rejects(f.sandbox.runConnected(spec('true'), { ...spec('true'), stderrToStdout: true }), /second\.stderrToStdout/);
    // One side that cannot be prepared (a root without its mount points): the other is torn down.
    await sleep(200); // the earlier tests' containers, destroyed a little after their results
    const before = openDescriptors();
    await assert.rejects(f.sandbox.runConnected(spec('sleep 5'), { ...spec('true'), rootDir: f.workDir() }), /rootDir: .*does not exist/);
    await until(() => openDescriptors() === before, 2000, 5, 'the prepared side and the pipes closed');
    // What start would refuse is refused before either side is prepared or started.
    await assert.rejects(f.sandbox.runConnected(spec('true'), { ...spec('true'), argv: [] }), /argv: must be a non-empty array/);
  });
});
