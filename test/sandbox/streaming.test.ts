// Streaming runs (Sandbox.runStreaming): one program whose stdin, stdout and stderr are pipes to
// the caller, or one terminal, as a live session drives it: output arrives while the program
// runs, stdin is typed as it goes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxSpecError, type RunSpec, type TerminalSize } from '../../src/sandbox/index.js';
import { initOfProgram } from '../helpers/processes.js';
import { until } from '../helpers/until.js';
import { DEFAULT_LIMITS, skip, text, useFixture } from './fixture.js';

describe('sandbox: streaming runs', { skip }, () => {
  const f = useFixture();

  const spec = (argv: string[], limits: Partial<RunSpec['limits']> = {}): RunSpec => ({
    rootDir: f.rootDir,
    workDirHostPath: f.workDir(),
    argv,
    limits: { ...DEFAULT_LIMITS, ...limits },
  });
  const shell = (script: string, limits: Partial<RunSpec['limits']> = {}) => spec(['/bin/sh', '-c', script], limits);
  const openDescriptors = () => fs.readdirSync('/proc/self/fd').length;

  /** Starts a streaming run that records every chunk, and any chunk given after its result. */
  function stream(runSpec: RunSpec, terminal?: TerminalSize) {
    const chunks: { stream: 'stdout' | 'stderr'; chunk: Buffer }[] = [];
    let settled = false;
    let chunksAfterResult = 0;
    const run = f.sandbox.runStreaming(runSpec, {
      onOutput: (name, chunk) => {
        if (settled) chunksAfterResult++;
        chunks.push({ stream: name, chunk });
      },
    }, terminal);
    const result = run.result.then((r) => {
      settled = true;
      return r;
    });
    const received = (name: 'stdout' | 'stderr') => text(Buffer.concat(chunks.filter((c) => c.stream === name).map((c) => c.chunk)));
    return { run, result, chunks, received, chunksAfterResult: () => chunksAfterResult };
  }

  it('streams output while the program runs, and gives it stdin as it is written', async () => {
    const s = stream(spec(['/bin/cat']));
    s.run.write(Buffer.from('one\n'));
    // Only output that streams can arrive before "two" is written and stdin closed.
    await until(() => s.received('stdout') === 'one\n', 5000, 5, 'the first line echoed while cat runs');
    s.run.write(Buffer.from('two\n'));
    s.run.end();
    const endedAt = Date.now();
    const r = await s.result;
    // End of file on both output pipes follows the program's exit at once, not the bound on it (1 s).
    assert.ok(Date.now() - endedAt < 700, `the result ${Date.now() - endedAt} ms after stdin ended`);
    assert.deepEqual([r.verdict, r.exitCode], ['ok', 0]);
    assert.equal(text(r.stdout), 'one\ntwo\n');
    assert.equal(s.received('stdout'), 'one\ntwo\n');
    assert.deepEqual([r.stdoutTruncated, r.stderrTruncated, r.stderr.length], [false, false, 0]);
    assert.ok(r.metrics.wallTimeMs > 0);
    await sleep(50);
    assert.equal(s.chunksAfterResult(), 0);
  });

  it("ends a run whose init is killed mid-run as internal_error (init_died), not ok", async () => {
    const marker = 'streaming-cut-short-by-init-death';
    const s = stream(shell(`echo s; sleep 10; echo e # ${marker}`, { wallTimeMs: 30_000 }));
    await until(() => s.received('stdout') === 's\n', 5000, 5, 'the first line streamed');
    const init = initOfProgram(marker);
    assert.ok(init !== undefined, 'its init found');
    process.kill(init, 'SIGKILL');
    const r = await s.result;
    assert.equal(r.verdict, 'internal_error');
    assert.deepEqual([r.error?.step, r.error?.code], ['init_died', 'ESRCH']);
    assert.equal(s.received('stdout'), 's\n', 'what was streamed before stays streamed; nothing after');
  });

  it('gives stderr as a stream of its own', async () => {
    const s = stream(shell('echo out; echo err >&2; read line; echo "more $line"; echo "err $line" >&2'));
    await until(() => s.received('stdout') === 'out\n' && s.received('stderr') === 'err\n', 5000, 5, 'both first lines');
    s.run.write(Buffer.from('x\n'));
    const r = await s.result;
    assert.equal(r.verdict, 'ok');
    assert.deepEqual([s.received('stdout'), s.received('stderr')], ['out\nmore x\n', 'err\nerr x\n']);
    assert.deepEqual([text(r.stdout), text(r.stderr)], ['out\nmore x\n', 'err\nerr x\n']);
  });

  it('cuts the output at the limit exactly and kills the run: output_limit', async () => {
    const outputBytes = 100_000; // more than one read of the pipe: the cut falls inside a chunk
    const s = stream(spec(['/usr/bin/yes', 'xxxxxxxxxxxxxxx'], { outputBytes }));
    const r = await s.result;
    assert.equal(r.verdict, 'output_limit');
    assert.equal(s.chunks.reduce((sum, c) => sum + c.chunk.length, 0), outputBytes);
    assert.deepEqual([r.stdout.length, r.stdoutTruncated, r.stderrTruncated], [outputBytes, true, false]);
    assert.ok(r.stdout.every((byte) => byte === 0x78 || byte === 0x0a));
    await sleep(50);
    assert.equal(s.chunksAfterResult(), 0);
  });

  it('counts stdout and stderr together against the limit', async () => {
    // 3200 bytes of stderr, read before stdout starts (a second later): stdout has what is left.
    // (Written in turns, which pipe the reader drains first would be the scheduler's choice.)
    const script = 'i=0; while [ $i -lt 200 ]; do echo yyyyyyyyyyyyyyy >&2; i=$((i+1)); done; sleep 1; while :; do echo xxxxxxxxxxxxxxx; done';
    const s = stream(shell(script, { outputBytes: 5000 }));
    const r = await s.result;
    assert.equal(r.verdict, 'output_limit');
    assert.equal(r.stderr.length, 3200);
    assert.equal(r.stdout.length, 1800);
    assert.equal(r.stdoutTruncated, true);
    assert.equal(r.stderrTruncated, false);
  });

  it('ends a run waiting on stdin when spec.signal aborts: cancelled', async () => {
    const controller = new AbortController();
    const s = stream({ ...shell('echo ready; read line; echo "got $line"'), signal: controller.signal });
    await until(() => s.received('stdout') === 'ready\n', 5000, 5, 'the program started');
    controller.abort();
    const r = await s.result;
    assert.equal(r.verdict, 'cancelled');
    assert.equal(text(r.stdout), 'ready\n');
  });

  it('ends a run waiting on stdin at the wall limit: wall_time_limit', async () => {
    const s = stream(shell('read line', { wallTimeMs: 300 }));
    const r = await s.result;
    assert.equal(r.verdict, 'wall_time_limit');
    assert.ok(r.metrics.wallTimeMs < 1000, `killed at the limit (${r.metrics.wallTimeMs} ms)`);
  });

  it('ignores what is written after the program is gone (EPIPE), and after the result', async () => {
    const s = stream(spec(['/bin/true']));
    let settled = false;
    void s.result.then(() => (settled = true));
    // More than a pipe holds: the writes after the program's exit fail with EPIPE.
    const block = Buffer.alloc(64 * 1024, 0x61);
    while (!settled) {
      s.run.write(block);
      await sleep(1);
    }
    const r = await s.result;
    assert.deepEqual([r.verdict, r.exitCode], ['ok', 0]);
    s.run.write(block);
    s.run.end();
    s.run.write(block);
    s.run.end();
    await sleep(50);
  });

  it('reads end of file where the caller ends stdin before the program reads it', async () => {
    const s = stream(shell('sleep 0.1; if read line; then echo "line $line"; else echo "eof $line"; fi'));
    s.run.write(Buffer.from('partial'));
    s.run.end();
    const r = await s.result;
    assert.equal(r.verdict, 'ok');
    assert.equal(text(r.stdout), 'eof partial\n');
  });

  it('refuses stdin and stderrToStdout, and any bad spec, at once', () => {
    const io = { onOutput: () => {} };
    assert.throws(() => f.sandbox.runStreaming({ ...spec(['/bin/true']), stdin: 'x' }, io), (error: unknown) => {
      assert.ok(error instanceof SandboxSpecError);
      assert.equal(error.field, 'stdin');
      return true;
    });
    assert.throws(() => f.sandbox.runStreaming({ ...spec(['/bin/true']), stderrToStdout: true }, io), /stderrToStdout/);
    assert.throws(() => f.sandbox.runStreaming(spec([]), io), /argv: must be a non-empty array/);
    assert.throws(() => f.sandbox.runStreaming({ ...spec(['/bin/true']), rootDir: '/nonexistent-root' }, io), /rootDir/);
    // An empty stdin is no stdin.
    const r = f.sandbox.runStreaming({ ...spec(['/bin/true']), stdin: '' }, io);
    return r.result.then((result) => assert.equal(result.verdict, 'ok'));
  });

  it('leaves no descriptor open: runs that end, are cut, are cancelled, or fail to set up', async () => {
    // A work dir in another mount namespace cannot be bound into ours: prepare fails (bind_workdir).
    const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '60'], { stdio: 'ignore' });
    try {
      const ownNs = fs.readlinkSync('/proc/self/ns/mnt');
      await until(() => fs.readlinkSync(`/proc/${holder.pid}/ns/mnt`) !== ownNs, 2000, 10, 'unshare took effect');
      // A first run opens what the sandbox keeps open for all (its cgroup files, the event loop's).
      await stream(spec(['/bin/true'])).result;
      await sleep(200);
      const before = openDescriptors();
      const controller = new AbortController();
      const cancelled = stream({ ...shell('read line'), signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      const echo = stream(spec(['/bin/cat']));
      echo.run.write(Buffer.from('hello\n'));
      echo.run.end();
      const results = await Promise.all([
        echo.result,
        stream(spec(['/usr/bin/yes'], { outputBytes: 10_000 })).result,
        cancelled.result,
        stream({ ...spec(['/bin/true']), workDirHostPath: `/proc/${holder.pid}/root${f.workDir()}` }).result,
        stream(spec(['/bin/no-such-program'])).result,
      ]);
      assert.deepEqual(
        results.map((r) => [r.verdict, r.error?.step]),
        [['ok', undefined], ['output_limit', undefined], ['cancelled', undefined], ['internal_error', 'bind_workdir'], ['internal_error', 'execve']],
      );
      await until(() => openDescriptors() === before, 3000, 5, 'every descriptor of the runs closed');
    } finally {
      holder.kill('SIGKILL');
    }
  });

  describe('on a terminal', () => {
    const size = { rows: 30, cols: 100 };

    it("makes the terminal the program's stdin, stdout, stderr and controlling terminal, of the size asked; echoes what is typed", async () => {
      // /dev/tty opens only for a process with a controlling terminal (ENXIO without).
      const s = stream(shell('test -t 0 && test -t 1 && test -t 2 && echo terminal; stty size; echo own > /dev/tty; read line; echo "got $line"; echo err >&2'), size);
      await until(() => s.received('stdout').includes('own'), 5000, 5, 'the program reached its read');
      s.run.write(Buffer.from('abc\n'));
      const r = await s.result;
      assert.deepEqual([r.verdict, r.exitCode], ['ok', 0]);
      // The terminal writes a newline as CR LF, and echoes the typed line.
      const expected = 'terminal\r\n30 100\r\nown\r\nabc\r\ngot abc\r\nerr\r\n';
      assert.equal(text(r.stdout), expected);
      assert.equal(s.received('stdout'), expected);
      assert.deepEqual([r.stderr.length, s.received('stderr')], [0, '']);
    });

    it('leaves the program no descriptor but the terminal as 0, 1 and 2, as with pipes', async () => {
      for (const terminal of [size, undefined]) {
        const r = await stream(shell('ls -1 /proc/$$/fd; true'), terminal).result;
        assert.equal(r.verdict, 'ok');
        assert.deepEqual(text(r.stdout).split(/\r?\n/), ['0', '1', '2', ''], terminal ? 'a terminal' : 'pipes');
      }
    });

    it('gives the program SIGINT for a typed Ctrl-C and SIGWINCH with the new size for a resize; Ctrl-Z stops nothing', async () => {
      const s = stream(shell("trap 'stty size' WINCH; echo ready; i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done"), size);
      await until(() => s.received('stdout').includes('ready'), 5000, 5, 'the trap set');
      // A stopped shell would run no trap: the size below would never come.
      s.run.write(Buffer.from([0x1a]));
      s.run.resize({ rows: 40, cols: 120 });
      await until(() => s.received('stdout').includes('40 120'), 5000, 5, 'the new size told on SIGWINCH');
      s.run.write(Buffer.from([0x03]));
      const r = await s.result;
      assert.deepEqual([r.verdict, r.signalName], ['signaled', 'SIGINT']);
      assert.throws(() => s.run.resize({ rows: 0, cols: 80 }), /terminal\.rows/);
    });

    it('erases a UTF-8 character, not its last byte', async () => {
      const s = stream(shell('read line; echo "[$line]"'), size);
      s.run.write(Buffer.concat([Buffer.from('aé'), Buffer.from([0x7f]), Buffer.from('\n')]));
      const r = await s.result;
      assert.equal(r.verdict, 'ok');
      assert.ok(text(r.stdout).endsWith('[a]\r\n'), JSON.stringify(text(r.stdout)));
    });

    it("ends the program's input with Ctrl-D (end of file where the line is empty)", async () => {
      const s = stream(spec(['/bin/cat']), size);
      s.run.write(Buffer.from('line\n'));
      s.run.end();
      // Dropped: nothing is written after the end of input (else the terminal would echo it).
      s.run.write(Buffer.from('more\n'));
      const r = await s.result;
      assert.deepEqual([r.verdict, r.exitCode], ['ok', 0]);
      assert.equal(text(r.stdout), 'line\r\nline\r\n');
    });

    it('cuts the output at the limit exactly and kills the run: output_limit', async () => {
      const outputBytes = 50_000;
      const s = stream(spec(['/usr/bin/yes', 'xxxxxxxxxxxxxxx'], { outputBytes }), size);
      const r = await s.result;
      assert.equal(r.verdict, 'output_limit');
      assert.equal(s.chunks.reduce((sum, c) => sum + c.chunk.length, 0), outputBytes);
      assert.deepEqual([r.stdout.length, r.stdoutTruncated], [outputBytes, true]);
    });

    it('takes what is typed past a full input queue in turn, and nothing after the program is gone', async () => {
      // The terminal holds some tens of KiB of typed input (its line buffer and the kernel's buffers
      // behind it): the rest waits until the program reads. Not echoed, which would only repeat it.
      const typedBytes = 200_000;
      const s = stream(shell(`stty -echo; echo ready; sleep 0.3; head -c ${typedBytes} > /dev/null; echo done`), size);
      await until(() => s.received('stdout').includes('ready'), 5000, 5, 'echo off');
      // The run's master: the one descriptor of ours on /dev/ptmx (the tests of this file run one
      // at a time).
      const masters = fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`) === '/dev/ptmx';
        } catch {
          return false;
        }
      });
      assert.equal(masters.length, 1, String(masters));
      const masterFd = Number(masters[0]);
      const block = Buffer.alloc(1000, 0x61);
      block[999] = 0x0a;
      for (let i = 0; i < typedBytes / block.length; i++) s.run.write(block);
      const r = await s.result;
      assert.deepEqual([r.verdict, r.exitCode], ['ok', 0]);
      assert.equal(text(r.stdout), 'ready\r\ndone\r\n');
      // The master's number is free again: a file opened on it gets none of what follows (files
      // are opened until one has it; the lowest free number comes first).
      const opened: number[] = [];
      try {
        while (!opened.includes(masterFd) && opened.length < 256) opened.push(fs.openSync(path.join(f.workDir(), `after-${opened.length}`), 'w+'));
        assert.ok(opened.includes(masterFd), `no file got the master's number ${masterFd}`);
        s.run.write(block);
        s.run.resize({ rows: 10, cols: 10 });
        s.run.end();
        assert.equal(fs.fstatSync(masterFd).size, 0);
      } finally {
        for (const fd of opened) fs.closeSync(fd);
      }
    });

    it('passes the output limit with the echo of what was typed before the program runs: output_limit, at once', async () => {
      const workDirHostPath = f.workDir();
      const s = stream({ ...shell('sleep 5; echo ran > ran'), workDirHostPath, limits: { ...DEFAULT_LIMITS, outputBytes: 5 } }, size);
      // Echoed as soon as the kernel's line discipline has it: while the container is being made,
      // or (its work queued behind) just after the program started, which is then killed.
      const startedAt = Date.now();
      s.run.write(Buffer.from('hello world\n'));
      const r = await s.result;
      assert.equal(r.verdict, 'output_limit');
      assert.deepEqual([text(r.stdout), r.stdoutTruncated], ['hello', true]);
      assert.ok(Date.now() - startedAt < 3000, `ended ${Date.now() - startedAt} ms after the write, not after the program's sleep`);
      assert.equal(fs.existsSync(path.join(workDirHostPath, 'ran')), false);
    });

    it('refuses a bad size at once, and leaves no descriptor open', async () => {
      await stream(spec(['/bin/true']), size).result;
      await sleep(200);
      const before = openDescriptors();
      for (const bad of [{ rows: 0, cols: 80 }, { rows: 24, cols: 65536 }, { rows: 2.5, cols: 80 }]) {
        assert.throws(() => f.sandbox.runStreaming(spec(['/bin/true']), { onOutput: () => {} }, bad), /terminal\.(rows|cols): must be an integer 1-65535/);
      }
      const controller = new AbortController();
      const cancelled = stream({ ...shell('read line'), signal: controller.signal }, size);
      setTimeout(() => controller.abort(), 100);
      const results = await Promise.all([cancelled.result, stream(spec(['/bin/true']), size).result, stream(spec(['/bin/no-such-program']), size).result]);
      assert.deepEqual(results.map((r) => [r.verdict, r.error?.step]), [['cancelled', undefined], ['ok', undefined], ['internal_error', 'execve']]);
      await until(() => openDescriptors() === before, 3000, 5, 'every descriptor of the runs closed');
    });
  });
});
