// Live jobs end to end: real Redis, the API listening on loopback, a worker on the real executor.
// /v1/live and Piston's /api/v2/connect: stdin written while the program runs and its output read
// as it writes it, compiles, cancels, a client that leaves, a worker that shuts down, and every
// refusal's message and close code.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { QUEUE_NAME } from '../../src/queue/keys.js';
import { openLiveSocket, type LiveSocket } from '../helpers/live-socket.js';
import { until } from '../helpers/until.js';
import { builtRuntimes, getJson, listen, pollJob, scratchDir, startService, startTestWorker, withSlowCpu, type ServiceHarness, type TestWorker } from './fixtures.js';

const inEmulatedVm = process.env.CELLBLOCK_IN_VM === '1';
const built = builtRuntimes().runtimes.filter((runtime) => ['python', 'c'].includes(runtime.id));
const runtimes = inEmulatedVm ? built.map((runtime) => withSlowCpu(runtime)) : built;
const python = runtimes.find((runtime) => runtime.id === 'python');
const c = runtimes.find((runtime) => runtime.id === 'c');
const skip = !python && 'the python image is not built (bin/cellblock images build python)';

/** Echoes each line upper-cased as it comes, then says bye on stderr. */
/** Records the id of every live job the service's API queues; `delayMs` holds each submit that
 * long first (as a slow Redis would). */
function recordLiveSubmits(service: ServiceHarness, ids: string[], delayMs = 0): void {
  const submitLive = service.jobs.submitLive.bind(service.jobs);
  const pending = new Set<unknown>();
  submittingBy.set(service, pending);
  service.jobs.submitLive = async (...args) => {
    const marker = {};
    pending.add(marker);
    try {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const session = await submitLive(...args);
      ids.push(session.id);
      return session;
    } finally {
      pending.delete(marker);
    }
  };
}
const submittingBy = new Map<ServiceHarness, Set<unknown>>();
/** A submit is under way in the service's API. */
const submitting = (service: ServiceHarness) => (submittingBy.get(service)?.size ?? 0) > 0;

const ECHO = 'import sys\nfor line in sys.stdin:\n    print(line.strip().upper(), flush=True)\nprint("bye", file=sys.stderr, flush=True)\n';
/** Tells what its terminal is, greets, reports each new size, and ends at end of input. */
const TERMINAL_PROGRAM = [
  'import os, signal, sys',
  'def size():',
  '    s = os.get_terminal_size(0)',
  "    return f'{s.lines}x{s.columns}'",
  "signal.signal(signal.SIGWINCH, lambda *_: print('resized', size(), flush=True))",
  "print(sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty(), os.environ.get('TERM'), size(), flush=True)",
  "print('name?', flush=True)",
  'name = sys.stdin.readline().strip()',
  "print('hi', name, file=sys.stderr, flush=True)",
  'while sys.stdin.readline():',
  '    pass',
  '',
].join('\n');
const SLEEPER = 'import time\nprint("started", flush=True)\ntime.sleep(30)\n';

describe('live jobs end to end', { skip }, () => {
  let service: ServiceHarness;
  let worker: TestWorker;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let base: string;
  let wsBase: string;
  const open = (path: string): Promise<LiveSocket> => openLiveSocket(`${wsBase}${path}`);
  /** Every live job the API queued, in order (the app calls the client it was given). */
  const submittedIds: string[] = [];

  before(async () => {
    scratch = await scratchDir();
    service = await startService({ runtimes });
    recordLiveSubmits(service, submittedIds);
    base = await listen(service);
    wsBase = base.replace(/^http/, 'ws');
    worker = await startTestWorker(service, scratch.dir, { concurrency: 2, runtimes, ...(inEmulatedVm ? { lockDurationMs: 30_000 } : {}) });
  });
  after(async () => {
    await worker?.close();
    await service?.close();
    await scratch?.remove();
  });

  test('/v1/live: the output of each line comes before the next line is sent, then the job as GET shows it', async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'python', source: ECHO } });
    const { id } = await socket.next((m) => m.type === 'accepted');
    await socket.next((m) => m.type === 'started');
    await socket.next((m) => m.type === 'stage' && m.stage === 'run');
    socket.send({ type: 'stdin', data: 'hello\n' });
    await socket.outputHolds('HELLO\n');
    // Only now: the first answer came while the program still waited for more.
    socket.send({ type: 'stdin', data: Buffer.from('wörld\n').toString('base64'), base64: true });
    await socket.outputHolds('WÖRLD\n');
    socket.send({ type: 'stdinEnd' });
    const exit = await socket.next((m) => m.type === 'exit');
    assert.deepEqual([exit.stage, exit.verdict, exit.exitCode], ['run', 'ok', 0]);
    assert.ok(exit.wallTimeMs > 0 && exit.peakMemoryBytes > 0, JSON.stringify(exit));
    const done = await socket.next((m) => m.type === 'done');
    assert.equal((await socket.closed).code, 1000);
    await socket.outputHolds('bye\n', { type: 'output', stream: 'stderr' });
    assert.equal(done.job.id, id);
    assert.equal(done.job.status, 'done');
    assert.equal(done.job.result.stdout, 'HELLO\nWÖRLD\n');
    assert.equal(done.job.result.stderr, 'bye\n');
    assert.deepEqual((await getJson(`${base}/v1/jobs/${id}`)).json, done.job);
  });


  test('/v1/live with a terminal: the program sees one of the size asked (TERM set), stderr in the one stream, a resize its SIGWINCH, stdinEnd its Ctrl-D', async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'python', source: TERMINAL_PROGRAM }, terminal: { rows: 24, cols: 80 } });
    // Sent before the job is even queued: held (by the API, then the worker), and the program
    // starts at the last size asked.
    socket.send({ type: 'resize', rows: 25, cols: 81 });
    const { id } = await socket.next((m) => m.type === 'accepted');
    await socket.outputHolds('True True True xterm-256color 25x81\r\nname?\r\n');
    socket.send({ type: 'stdin', data: 'ada\n' });
    // The terminal echoes what is typed; the program's stderr comes in the same stream.
    await socket.outputHolds('ada\r\nhi ada\r\n');
    socket.send({ type: 'resize', rows: 40, cols: 120 });
    await socket.outputHolds('resized 40x120\r\n');
    socket.send({ type: 'stdinEnd' });
    const exit = await socket.next((m) => m.type === 'exit');
    assert.deepEqual([exit.verdict, exit.exitCode], ['ok', 0]);
    const done = await socket.next((m) => m.type === 'done');
    assert.equal((await socket.closed).code, 1000);
    assert.equal(done.job.id, id);
    assert.equal(done.job.result.stdout, 'True True True xterm-256color 25x81\r\nname?\r\nada\r\nhi ada\r\nresized 40x120\r\n');
    assert.equal(done.job.result.stderr, '');
    assert.ok(socket.messages.every((m) => m.type !== 'output' || m.stream === 'stdout'));
  });

  test('/v1/live: a compiled program, its compile a stage of its own', { skip: !c && 'the gcc image is not built' }, async () => {
    const source = '#include <stdio.h>\nint main(void) { char line[64]; while (fgets(line, sizeof line, stdin)) { printf("got %s", line); fflush(stdout); } return 0; }\n';
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'c', source } });
    await socket.next((m) => m.type === 'stage' && m.stage === 'run', 120_000);
    socket.send({ type: 'stdin', data: 'x\n' });
    await socket.outputHolds('got x\n');
    socket.send({ type: 'stdinEnd' });
    await socket.next((m) => m.type === 'done');
    const kinds = socket.messages.filter((m) => m.type === 'stage' || m.type === 'exit').map((m) => `${m.type}:${m.stage}`);
    assert.deepEqual(kinds, ['stage:compile', 'exit:compile', 'stage:run', 'exit:run']);
  });

  test('/v1/live: a compile error ends the job without a run', { skip: !c && 'the gcc image is not built' }, async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'c', source: 'int main(void) { return nope; }\n' } });
    const done = await socket.next((m) => m.type === 'done', 120_000);
    assert.equal(done.job.result.verdict, 'compile_error');
    assert.ok(socket.messages.some((m) => m.type === 'output' && m.stage === 'compile' && m.stream === 'stderr' && /nope/.test(m.data)));
    assert.ok(!socket.messages.some((m) => m.type === 'stage' && m.stage === 'run'));
  });

  test('/v1/live: cancel kills the run; the job ends cancelled', async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'python', source: SLEEPER } });
    await socket.outputHolds('started\n');
    socket.send({ type: 'cancel' });
    const done = await socket.next((m) => m.type === 'done');
    assert.equal(done.job.status, 'cancelled');
    assert.equal(done.job.result.verdict, 'cancelled');
  });

  test('/v1/live: a client that leaves mid-run has its job cancelled', async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'python', source: SLEEPER } });
    const { id } = await socket.next((m) => m.type === 'accepted');
    await socket.outputHolds('started\n');
    socket.close();
    const view = await pollJob(base, id, 10_000);
    assert.equal(view.status, 'cancelled');
  });

  test('/v1/live: the wall time limit ends a program that waits for input', async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'python', source: ECHO, limits: { wallTimeMs: inEmulatedVm ? 5000 : 1000 } } });
    const done = await socket.next((m) => m.type === 'done');
    assert.equal(done.job.result.verdict, 'wall_time_limit');
  });

  test('/v1/live: the run\'s output limit', async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'python', source: 'while True:\n    print("x" * 100, flush=True)\n', limits: { outputBytes: 10_000 } } });
    const done = await socket.next((m) => m.type === 'done');
    assert.equal(done.job.result.verdict, 'output_limit');
    const streamed = socket.messages.filter((m) => m.type === 'output').map((m) => m.data).join('');
    assert.equal(streamed.length, 10_000);
    assert.equal(done.job.result.stdout, streamed);
  });

  /** [what, messages, close code, error code, whether a job was queued (default: by the code)] */
  const refusals: [string, unknown[], number, string, boolean?][] = [
    ['not JSON', ['{'], 4400, 'invalid_json'],
    ['stdin before the submit', [{ type: 'stdin', data: 'x' }], 4400, 'not_submitted'],
    ['an unknown message', [{ type: 'shout' }], 4400, 'invalid_message'],
    ['a submission the schema refuses', [{ type: 'submit', job: { language: 'python', source: 'x', colour: 'red' } }], 4400, 'invalid_request'],
    ['an unknown language', [{ type: 'submit', job: { language: 'cobol', source: 'x' } }], 4400, 'unknown_language'],
    ['tests', [{ type: 'submit', job: { language: 'python', source: 'x', tests: [{ stdin: '' }] } }], 4400, 'live_not_applicable'],
    // Refused for the tests a live job does not take, not for the stdin beside them.
    ['tests beside a stdin', [{ type: 'submit', job: { language: 'python', source: 'x', stdin: 'TOP', tests: [{ stdin: 'T1' }] } }], 4400, 'live_not_applicable'],
    ['stderrToStdout', [{ type: 'submit', job: { language: 'python', source: 'x', stderrToStdout: true } }], 4400, 'live_not_applicable'],
    ['stdin that is not base64', [{ type: 'submit', job: { language: 'python', source: ECHO } }, { type: 'stdin', data: '*', base64: true }], 4400, 'invalid_base64'],
    ['two submits', [{ type: 'submit', job: { language: 'python', source: ECHO } }, { type: 'submit', job: { language: 'python', source: ECHO } }], 4400, 'already_submitted'],
    ['a terminal of no size', [{ type: 'submit', job: { language: 'python', source: ECHO }, terminal: { rows: 0, cols: 80 } }], 4400, 'invalid_message', false],
    ['a resize of a job without a terminal', [{ type: 'submit', job: { language: 'python', source: ECHO } }, { type: 'resize', rows: 24, cols: 80 }], 4400, 'no_terminal'],
    ['a resize that is no size', [{ type: 'submit', job: { language: 'python', source: ECHO }, terminal: { rows: 24, cols: 80 } }, { type: 'resize', rows: '40' }], 4400, 'invalid_message'],
  ];
  for (const [what, messages, code, errorCode, queued] of refusals) {
    test(`/v1/live refuses ${what}: an error message, then close ${code}`, async () => {
      const submittedBefore = submittedIds.length;
      const socket = await open('/v1/live');
      for (const message of messages) socket.send(message);
      const error = await socket.next((m) => m.type === 'error');
      assert.equal(error.error.code, errorCode, JSON.stringify(error));
      assert.equal(typeof error.error.message, 'string');
      assert.deepEqual(await socket.closed, { code, reason: errorCode });
      // A job the socket submitted (refused while it was being queued: never `accepted`) goes with it.
      const submitted = queued ?? (messages.some((m) => (m as { type?: string }).type === 'submit') && !['invalid_request', 'unknown_language', 'live_not_applicable'].includes(errorCode));
      // Refused before any submit: none is under way either (a late one would count after this).
      if (!submitted) assert.equal(submitting(service), false, 'no submit under way');
      await until(() => submittedIds.length === submittedBefore + (submitted ? 1 : 0), 10_000);
      for (const id of submittedIds.slice(submittedBefore)) assert.equal((await pollJob(base, id, 10_000)).status, 'cancelled');
    });
  }

  test("/v1/live refuses a list past the schema's maxItems for its length, as POST /v1/jobs does: its items not walked", async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'python', source: 'x', tests: Array.from({ length: 100_001 }, () => ({ stdn: '' })) } });
    const error = await socket.next((m) => m.type === 'error');
    assert.equal(error.error.code, 'invalid_request', JSON.stringify(error));
    assert.equal(error.error.message, 'job/tests must not have more than 100000 items');
    assert.deepEqual(error.error.details, { issues: [{ path: 'job/tests', message: 'must not have more than 100000 items' }] });
    assert.deepEqual(await socket.closed, { code: 4400, reason: 'invalid_request' });
  });

  test('/metrics counts the live sockets open on this API process', async () => {
    const liveSockets = async () => {
      const count = Number(/^cellblock_api_live_sockets (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1]);
      assert.ok(Number.isInteger(count), 'the metric is there');
      return count;
    };
    // Every earlier socket has ended; one counts until its job is cancelled, which may still be under way.
    await until(async () => (await liveSockets()) === 0, 10_000);
    const socket = await open('/v1/live');
    assert.equal(await liveSockets(), 1);
    socket.close();
    await socket.closed;
    await until(async () => (await liveSockets()) === 0, 5000);
  });

  test('a plain GET (no upgrade) of either socket route is 426, said as the front says errors', async () => {
    const v1 = await getJson(`${base}/v1/live`);
    assert.equal(v1.status, 426);
    assert.equal(v1.json.error.code, 'upgrade_required');
    const piston = await getJson(`${base}/api/v2/connect`);
    assert.equal(piston.status, 426);
    assert.equal(typeof piston.json.message, 'string');
  });

  test('/v1/live: a refusal after the job was accepted cancels it', async () => {
    const socket = await open('/v1/live');
    socket.send({ type: 'submit', job: { language: 'python', source: SLEEPER } });
    const { id } = await socket.next((m) => m.type === 'accepted');
    socket.send({ type: 'stdin', data: '*', base64: true });
    assert.equal((await socket.next((m) => m.type === 'error')).error.code, 'invalid_base64');
    assert.equal((await socket.closed).code, 4400);
    assert.equal((await pollJob(base, id, 10_000)).status, 'cancelled');
  });

  test('Piston /api/v2/connect: runtime, stage, data as written, exit, close 4999', async () => {
    const socket = await open('/api/v2/connect');
    socket.send({ type: 'init', language: 'python', version: '*', files: [{ content: ECHO }] });
    const runtime = await socket.next((m) => m.type === 'runtime');
    assert.deepEqual(runtime, { type: 'runtime', language: 'python', version: python!.version });
    await socket.next((m) => m.type === 'stage' && m.stage === 'run');
    socket.send({ type: 'data', stream: 'stdin', data: 'ping\n' });
    await socket.outputHolds('PING\n', { type: 'data' });
    // A terminal's resize: nothing a process ends of, so no cancel.
    socket.send({ type: 'signal', signal: 'SIGWINCH' });
    socket.send({ type: 'data', stream: 'stdin', data: 'pong\n' });
    await socket.outputHolds('PONG\n', { type: 'data' });
    socket.send({ type: 'signal', signal: 'SIGTERM' });
    const exit = await socket.next((m) => m.type === 'exit');
    assert.equal(exit.stage, 'run');
    assert.equal(exit.code, null);
    assert.equal(exit.signal, 'SIGKILL');
    assert.deepEqual(await socket.closed, { code: 4999, reason: 'Job Completed' });
  });

  test('Piston /api/v2/connect: a signal right after init, before the program began: exit says SIGKILL', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const socket = await open('/api/v2/connect');
      socket.send({ type: 'init', language: 'python', version: '*', files: [{ content: SLEEPER }] });
      socket.send({ type: 'signal', signal: 'SIGTERM' });
      const exit = await socket.next((m) => m.type === 'exit');
      assert.deepEqual(exit, { type: 'exit', stage: 'run', code: null, signal: 'SIGKILL' });
      assert.deepEqual(await socket.closed, { code: 4999, reason: 'Job Completed' });
    }
  });

  test('Piston /api/v2/connect: a program that ends by itself', async () => {
    const socket = await open('/api/v2/connect');
    socket.send({ type: 'init', language: 'py', version: '3', files: [{ content: 'import sys\nprint("out")\nprint("err", file=sys.stderr)\nsys.exit(3)\n' }] });
    const exit = await socket.next((m) => m.type === 'exit');
    assert.deepEqual(exit, { type: 'exit', stage: 'run', code: 3, signal: null });
    await socket.outputHolds('out\n', { type: 'data' });
    await socket.outputHolds('err\n', { type: 'data', stream: 'stderr' });
    assert.deepEqual(await socket.closed, { code: 4999, reason: 'Job Completed' });
  });

  const pistonRefusals: [string, unknown[], number, string][] = [
    ['no init within a second', [], 4001, 'Initialization Timeout'],
    ['data before init', [{ type: 'data', stream: 'stdin', data: 'x' }], 4003, 'Not yet initialized'],
    ['a signal before init', [{ type: 'signal', signal: 'SIGKILL' }], 4003, 'Not yet initialized'],
    ['data to stdout', [{ type: 'init', language: 'python', version: '*', files: [{ content: SLEEPER }] }, { type: 'data', stream: 'stdout', data: 'x' }], 4004, 'Can only write to stdin'],
    ['an invalid signal', [{ type: 'init', language: 'python', version: '*', files: [{ content: SLEEPER }] }, { type: 'signal', signal: 'SIGNOPE' }], 4005, 'Invalid signal'],
    ['a second init', [{ type: 'init', language: 'python', version: '*', files: [{ content: SLEEPER }] }, { type: 'init', language: 'python', version: '*', files: [{ content: SLEEPER }] }], 4000, 'Already Initialized'],
    ['an unknown runtime', [{ type: 'init', language: 'cobol', version: '*', files: [{ content: 'x' }] }], 4002, 'Notified Error'],
    ['not JSON', ['{'], 4002, 'Notified Error'],
  ];
  for (const [what, messages, code, reason] of pistonRefusals) {
    test(`Piston /api/v2/connect: ${what} closes ${code}`, async () => {
      const socket = await open('/api/v2/connect');
      for (const message of messages) socket.send(message);
      assert.deepEqual(await socket.closed, { code, reason });
      if (code === 4002) assert.ok(socket.messages.some((m) => m.type === 'error' && typeof m.message === 'string'), JSON.stringify(socket.messages));
    });
  }
});

describe('live jobs: what the API holds and a worker that stops', { skip }, () => {
  test('stdin sent while no worker listens is held by the API, and the submission\'s own stdin comes first', async () => {
    const service = await startService({ runtimes });
    const scratch = await scratchDir();
    let worker: TestWorker | undefined;
    try {
      const base = await listen(service);
      const socket = await openLiveSocket(`${base.replace(/^http/, 'ws')}/v1/live`);
      socket.send({ type: 'submit', job: { language: 'python', source: ECHO, stdin: 'first\n' } });
      socket.send({ type: 'stdin', data: 'sec' });
      await socket.next((m) => m.type === 'accepted');
      socket.send({ type: 'stdin', data: 'ond\n' });
      socket.send({ type: 'stdinEnd' });
      await new Promise((resolve) => setTimeout(resolve, 200));
      worker = await startTestWorker(service, scratch.dir, { concurrency: 1, runtimes });
      const done = await socket.next((m) => m.type === 'done', 60_000);
      assert.equal(done.job.result.stdout, 'FIRST\nSECOND\n');
    } finally {
      await worker?.close();
      await service.close();
      await scratch.remove();
    }
  });

  test('at most CELLBLOCK_MAX_LIVE_SESSIONS_PER_CLIENT sockets per client: the next upgrade is 429, on both fronts', async () => {
    const service = await startService({ runtimes, config: { maxLiveSessionsPerClient: 1 } });
    try {
      const wsBase = (await listen(service)).replace(/^http/, 'ws');
      const first = await openLiveSocket(`${wsBase}/v1/live`);
      await assert.rejects(openLiveSocket(`${wsBase}/v1/live`), /429/);
      await assert.rejects(openLiveSocket(`${wsBase}/api/v2/connect`), /429/);
      first.close();
      await first.closed;
      await until(async () => {
        try {
          (await openLiveSocket(`${wsBase}/v1/live`)).close();
          return true;
        } catch {
          return false;
        }
      }, 5000);
    } finally {
      await service.close();
    }
  });

  test('a job cancelled before any worker took it: done comes at once', async () => {
    const service = await startService({ runtimes });
    try {
      const base = await listen(service);
      const socket = await openLiveSocket(`${base.replace(/^http/, 'ws')}/v1/live`);
      socket.send({ type: 'submit', job: { language: 'python', source: ECHO } });
      await socket.next((m) => m.type === 'accepted');
      const cancelledAt = Date.now();
      socket.send({ type: 'cancel' });
      socket.send({ type: 'cancel' });
      const done = await socket.next((m) => m.type === 'done');
      assert.ok(Date.now() - cancelledAt < 5000, `done ${Date.now() - cancelledAt} ms after the cancel`);
      assert.equal(done.job.status, 'cancelled');
    } finally {
      await service.close();
    }
  });

  test('stdin past the session\'s maximum: 413 stdin_too_large, the queued job cancelled (no worker needed)', async () => {
    const service = await startService({ runtimes, config: { bodyLimitBytes: 1024 } });
    try {
      const base = await listen(service);
      const socket = await openLiveSocket(`${base.replace(/^http/, 'ws')}/v1/live`);
      socket.send({ type: 'submit', job: { language: 'python', source: ECHO } });
      const { id } = await socket.next((m) => m.type === 'accepted');
      socket.send({ type: 'stdin', data: 'x'.repeat(600) });
      socket.send({ type: 'stdin', data: 'y'.repeat(600) });
      const error = await socket.next((m) => m.type === 'error');
      assert.equal(error.error.code, 'stdin_too_large');
      assert.equal(error.error.details.maximum, 1024);
      assert.equal((await socket.closed).code, 4413);
      assert.equal((await pollJob(base, id, 10_000)).status, 'cancelled');
    } finally {
      await service.close();
    }
  });

  test('an API that stops ends its live sockets with a word and cancels their jobs (no worker needed)', async () => {
    const service = await startService({ runtimes });
    try {
      const base = await listen(service);
      const wsBase = base.replace(/^http/, 'ws');
      const socket = await openLiveSocket(`${wsBase}/v1/live`);
      socket.send({ type: 'submit', job: { language: 'python', source: ECHO } });
      const { id } = await socket.next((m) => m.type === 'accepted');
      const piston = await openLiveSocket(`${wsBase}/api/v2/connect`);
      piston.send({ type: 'init', language: 'python', version: '*', files: [{ content: ECHO }] });
      await piston.next((m) => m.type === 'runtime');
      // A third whose job is still being queued when the API stops: its job is not left behind.
      const ids: string[] = [];
      recordLiveSubmits(service, ids, 300);
      const late = await openLiveSocket(`${wsBase}/v1/live`);
      late.send({ type: 'submit', job: { language: 'python', source: ECHO } });
      await until(() => ids.length === 0 && submitting(service), 5000);
      await service.app.close();
      assert.equal((await socket.next((m) => m.type === 'error')).error.code, 'shutting_down');
      assert.deepEqual(await socket.closed, { code: 4503, reason: 'shutting_down' });
      assert.deepEqual(await piston.closed, { code: 4002, reason: 'Notified Error' });
      assert.deepEqual(await late.closed, { code: 4503, reason: 'shutting_down' });
      // app.close() resolved only after these cancels (the job client is still open here).
      assert.equal((await service.jobs.get(id))?.status, 'cancelled');
      assert.equal(ids.length, 1);
      assert.equal((await service.jobs.get(ids[0]!))?.status, 'cancelled');
      const counts = await service.jobs.counts();
      assert.equal(counts.waiting + counts.active, 0, `every job cancelled: ${JSON.stringify(counts)}`);
    } finally {
      await service.close();
    }
  });

  test('a worker that shuts down mid-run fails its live job rather than hand it on', async () => {
    const service = await startService({ runtimes });
    const scratch = await scratchDir();
    try {
      const base = await listen(service);
      const worker = await startTestWorker(service, scratch.dir, { concurrency: 1, runtimes, shutdownGraceMs: 200 });
      const socket = await openLiveSocket(`${base.replace(/^http/, 'ws')}/v1/live`);
      socket.send({ type: 'submit', job: { language: 'python', source: SLEEPER } });
      await socket.outputHolds('started\n');
      await worker.close();
      const done = await socket.next((m) => m.type === 'done');
      assert.equal(done.job.status, 'failed');
      assert.match(done.job.failure.message, /live job is not handed to another worker/);
    } finally {
      await service.close();
      await scratch.remove();
    }
  });

  // As when an add timed out at the API, which cancelled the job (and closed its session) before
  // Redis took the add, or an API that died between the two: a live job no session listens to.
  test('a live job whose client has gone (queued with no session listening) fails within seconds, not at its wall time', async () => {
    const service = await startService({ runtimes });
    const scratch = await scratchDir();
    let worker: TestWorker | undefined;
    const queue = new Queue(QUEUE_NAME, { connection: { url: service.redis.url }, prefix: service.prefix });
    try {
      const base = await listen(service);
      const program = 'import time\nprint("started", flush=True)\ntime.sleep(60)\n';
      const request = { runtimeId: 'python', files: [{ name: 'main.py', contentBase64: Buffer.from(program).toString('base64') }], stdinBase64: '', args: [], limits: { wallTimeMs: 30_000 }, live: true };
      const job = await queue.add('job', request, { jobId: 'NoSessionLiveJob00000' });
      worker = await startTestWorker(service, scratch.dir, { concurrency: 1, runtimes });
      const started = Date.now();
      const view = await pollJob(base, job.id!, 40_000, (v) => v.status === 'failed' || v.status === 'done');
      assert.equal(view.status, 'failed', JSON.stringify(view));
      assert.match(view.failure.message, /not run without its client/);
      assert.ok(Date.now() - started < 25_000, 'ended after the last look (12 s), not at its 30 s wall time');
    } finally {
      await queue.close();
      await worker?.close();
      await service.close();
      await scratch.remove();
    }
  });
});
