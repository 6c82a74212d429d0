// The API's answers to bad input, a full queue, a missing Redis and API keys: every one a 4xx/5xx
// with a machine-readable code, never a crash. Real Redis, no workers (nothing here runs).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { PassThrough } from 'node:stream';
import { clientErrorHandler } from '../../src/api/errors.js';
import { Queue } from 'bullmq';
import pino from 'pino';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { Runtime } from '../../src/images/types.js';
import { LATER_JOB_FIELDS, variantJobField, type JobRecord, type StoredStage } from '../../src/jobs/model.js';
import { idempotentJobId } from '../../src/queue/idempotency.js';
import { workerConnectionName } from '../../src/queue/connection.js';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { QUEUE_NAME, redisKeys } from '../../src/queue/keys.js';
import { until } from '../helpers/until.js';
import { listen, postJson, startService, testRuntime, type ServiceHarness } from './fixtures.js';

function assertError(response: LightMyRequestResponse, statusCode: number, code: string): { code: string; message: string; details?: Record<string, unknown> } {
  assert.equal(response.statusCode, statusCode, `expected ${statusCode} ${code}, got ${response.statusCode}: ${response.body}`);
  const body = response.json() as { error: { code: string; message: string; details?: Record<string, unknown> } };
  assert.equal(body.error.code, code, response.body);
  assert.ok(body.error.message.length > 0, 'message must say what was wrong');
  return body.error;
}

const hello = { language: 'python', source: 'print("hi")' };

describe('a rolling upgrade: jobs with fields an older worker would ignore', () => {
  let service: ServiceHarness;
  let oldWorker: Redis;
  const post = (body: unknown) => service.app.inject({ method: 'POST', url: '/v1/jobs', payload: body as object });
  /** A live worker of a version before LATER_JOB_FIELDS, as its heartbeat shows it (its own named
   * connection open, as liveWorkers checks). */
  const liveness = (jobFields?: readonly string[]) =>
    JSON.stringify({ workerId: 'old-1', host: 'elsewhere', pid: 1, concurrency: 1, running: 0, ...(jobFields ? { jobFields } : {}) });

  before(async () => {
    // Java's too: Piston runs it by its `piston` variant, a later field (JobRequest.variant).
    service = await startService({ runtimes: [testRuntime, loadRuntimes().find((runtime) => runtime.id === 'java')!], config: { maxWaitMs: 100 } });
    oldWorker = new Redis(service.redis.port, '127.0.0.1', { connectionName: workerConnectionName('old-1') });
  });
  after(async () => {
    oldWorker?.disconnect();
    await service?.close();
  });

  test('are refused (503 workers_behind, Retry-After) while a live worker does not know them; the others are not', async () => {
    const merged = { ...hello, stderrToStdout: true };
    const noWorker = await post(merged);
    assert.equal(noWorker.statusCode, 202, 'no live worker: nothing to contradict');
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(noWorker.json() as { id: string }).id}` });
    await sleep(1100); // the live workers read for the job above are trusted for a second
    await oldWorker.set(redisKeys(service.prefix).worker('old-1'), liveness(), 'PX', 60_000);
    const refused = await post(merged);
    const error = assertError(refused, 503, 'workers_behind');
    assert.deepEqual(error.details, { fields: ['stderrToStdout'], workers: 1 });
    assert.equal(refused.headers['retry-after'], '10');
    const judge0 = await service.app.inject({ method: 'POST', url: '/submissions', payload: { source_code: 'print(1)', language_id: 71, redirect_stderr_to_stdout: true } });
    assert.equal(judge0.statusCode, 503, judge0.body);
    assert.match((judge0.json() as { error: string }).error, /does not know stderrToStdout/);
    // A Judge0 expected_output whose bytes are not UTF-8 travels as bytes, which an older worker
    // would ignore (judging the run against nothing): refused too. One that is UTF-8 travels as
    // text, which every worker compares: taken.
    const judge0Expecting = (expected: Buffer) =>
      service.app.inject({
        method: 'POST',
        url: '/submissions?base64_encoded=true',
        payload: { source_code: Buffer.from('print(1)').toString('base64'), language_id: 71, expected_output: expected.toString('base64') },
      });
    const notUtf8 = await judge0Expecting(Buffer.from([0xff, 0x0a]));
    assert.equal(notUtf8.statusCode, 503, notUtf8.body);
    assert.match((notUtf8.json() as { error: string }).error, /does not know tests\[\]\.expectedOutputBase64/);
    const utf8 = await judge0Expecting(Buffer.from('é 1\n'));
    assert.equal(utf8.statusCode, 201, utf8.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(utf8.json() as { token: string }).token}` });
    const plain = await post(hello);
    assert.equal(plain.statusCode, 202, 'a job without later fields runs on any worker');
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(plain.json() as { id: string }).id}` });
    const tests = [{ stdin: '', expectedOutput: '1' }];
    assert.deepEqual(assertError(await post({ ...hello, tests, comparison: { mode: 'tokens' } }), 503, 'workers_behind').details, { fields: ['comparison'], workers: 1 });
    assert.deepEqual(assertError(await post({ ...hello, tests, stopOnFailure: true }), 503, 'workers_behind').details, { fields: ['stopOnFailure'], workers: 1 });
    const byLines = await post({ ...hello, tests, comparison: { mode: 'lines' } });
    assert.equal(byLines.statusCode, 202, 'the default comparison runs on any worker');
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(byLines.json() as { id: string }).id}` });
    // Java through Piston runs by the runtime's `piston` variant, which an older worker would
    // ignore (running javac and class Main): refused; through /v1 it is the runtime's own.
    const javaSource = 'public class Solution { public static void main(String[] a) { System.out.println(1); } }';
    const piston = await service.app.inject({ method: 'POST', url: '/api/v2/execute', payload: { language: 'java', version: '*', files: [{ content: javaSource }] } });
    assert.equal(piston.statusCode, 503, piston.body);
    assert.match((piston.json() as { message: string }).message, /does not know variant/);
    const javaV1 = await post({ language: 'java', source: javaSource });
    assert.equal(javaV1.statusCode, 202, javaV1.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(javaV1.json() as { id: string }).id}` });
    // A worker that knows the field but whose runtime files lack the variant (one added to them
    // later, as data) would fail the job as unknown_variant: refused as well.
    await oldWorker.set(redisKeys(service.prefix).worker('old-1'), liveness(LATER_JOB_FIELDS), 'PX', 60_000);
    await sleep(1100);
    const noVariant = await service.app.inject({ method: 'POST', url: '/api/v2/execute', payload: { language: 'java', version: '*', files: [{ content: javaSource }] } });
    assert.equal(noVariant.statusCode, 503, noVariant.body);
    assert.match((noVariant.json() as { message: string }).message, /does not know variant:java\/piston/);
    // The worker upgraded: its heartbeat lists the fields and the variant.
    await oldWorker.set(redisKeys(service.prefix).worker('old-1'), liveness([...LATER_JOB_FIELDS, variantJobField('java', 'piston')]), 'PX', 60_000);
    await sleep(1100);
    const accepted = await post(merged);
    assert.equal(accepted.statusCode, 202, accepted.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(accepted.json() as { id: string }).id}` });
    const bytesAccepted = await judge0Expecting(Buffer.from([0xff, 0x0a]));
    assert.equal(bytesAccepted.statusCode, 201, bytesAccepted.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(bytesAccepted.json() as { token: string }).token}` });
    // Queued, and waited for (no worker runs here: the wait's 503, and the job cancelled).
    const pistonAccepted = await service.app.inject({ method: 'POST', url: '/api/v2/execute', payload: { language: 'java', version: '*', files: [{ content: javaSource }] } });
    assert.equal(pistonAccepted.statusCode, 503, pistonAccepted.body);
    assert.match((pistonAccepted.json() as { message: string }).message, /^job \S+ did not finish within 100 ms/);
  });
});

describe('compileArgs', () => {
  // Compiled runtimes on the test runtime's image: nothing here runs.
  const compiled: Runtime = { ...testRuntime, id: 'cc', language: 'cc', aliases: [], sourceFile: 'main.c', compile: { argv: ['/usr/bin/cc', '{args}', '{files}'] } };
  const fixedFlags: Runtime = { ...compiled, id: 'fixed', language: 'fixed', compile: { argv: ['/usr/bin/cc', '{files}'] } };
  let service: ServiceHarness;
  let queue: Queue;
  const post = (body: unknown) => service.app.inject({ method: 'POST', url: '/v1/jobs', payload: body as object });
  const source = 'int main(void) { return 0; }';

  before(async () => {
    service = await startService({ runtimes: [testRuntime, compiled, fixedFlags], config: { maxArgs: 2 } });
    queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: service.redis.port }, prefix: service.prefix });
  });
  after(async () => {
    await queue?.close();
    await service?.close();
  });

  test('are queued with the job, and absent when none are given', async () => {
    const accepted = await post({ language: 'cc', source, compileArgs: ['-O0', '-DNAME="a b"'] });
    assert.equal(accepted.statusCode, 202, accepted.body);
    const job = await queue.getJob((accepted.json() as { id: string }).id);
    assert.deepEqual(job?.data.compileArgs, ['-O0', '-DNAME="a b"']);
    const plain = await post({ language: 'cc', source, compileArgs: [] });
    assert.equal(plain.statusCode, 202, plain.body);
    const plainJob = await queue.getJob((plain.json() as { id: string }).id);
    assert.equal(plainJob?.data.compileArgs, undefined);
  });

  test("are refused where the runtime's compile command has no place for them, or above the maxima", async () => {
    const fixed = assertError(await post({ language: 'fixed', source, compileArgs: ['-O0'] }), 400, 'compile_args_not_accepted');
    assert.equal(fixed.details?.field, 'compileArgs');
    assert.match(fixed.message, /\{args\}/);
    const tooMany = assertError(await post({ language: 'cc', source, compileArgs: ['-a', '-b', '-c'] }), 400, 'too_many_args');
    assert.match(tooMany.message, /3 compile arguments; at most 2/);
    assertError(await post({ language: 'cc', source, compileArgs: ['-D\u0000'] }), 400, 'invalid_args');
    assertError(await post({ language: 'cc', source, compileArgs: ['x'.repeat(5000)] }), 400, 'invalid_request');
    assertError(await post({ language: 'cc', source, compileArgs: [1] }), 400, 'invalid_request');
  });
});

describe("a runtime's minLimits", () => {
  // R's case: a runtime that does not start below some open files. Nothing here runs.
  const floored: Runtime = { ...testRuntime, id: 'floored', language: 'floored', aliases: [], minLimits: { openFiles: 40 } };
  const compiledFloored: Runtime = { ...floored, id: 'floored-cc', language: 'floored-cc', compile: { argv: ['/usr/bin/cc', '{files}'] }, sourceFile: 'main.c' };
  let service: ServiceHarness;
  const post = (body: unknown) => service.app.inject({ method: 'POST', url: '/v1/jobs', payload: body as object });
  before(async () => {
    service = await startService({ runtimes: [testRuntime, floored, compiledFloored] });
  });
  after(() => service?.close());

  test('refuse a run limit below them (400 limit_below_minimum), not a compile limit; /v1/runtimes lists them', async () => {
    const below = assertError(await post({ language: 'floored', source: '', limits: { openFiles: 39 } }), 400, 'limit_below_minimum');
    assert.deepEqual(below.details, { field: 'limits.openFiles', value: 39, minimum: 40 });
    const at = await post({ language: 'floored', source: '', limits: { openFiles: 40 } });
    assert.equal(at.statusCode, 202, at.body);
    const compile = await post({ language: 'floored-cc', source: '', compileLimits: { openFiles: 20 } });
    assert.equal(compile.statusCode, 202, compile.body);
    const interactor = assertError(
      await post({ ...hello, tests: [{}], limits: { outputBytes: 1000 }, interactor: { language: 'floored', source: '', limits: { openFiles: 1 } } }),
      400,
      'limit_below_minimum',
    );
    assert.equal(interactor.details?.field, 'interactor.limits.openFiles');
    const list = (await service.app.inject({ method: 'GET', url: '/v1/runtimes' })).json() as { id: string; minLimits?: object }[];
    assert.deepEqual(list.find((r) => r.id === 'floored')?.minLimits, { openFiles: 40 });
    assert.equal(list.find((r) => r.id === 'python')?.minLimits, undefined);
  });

  test("the worker's own check refuses them too (for jobs no front checked)", async () => {
    const { checkJudgeProgram, checkSubmission } = await import('../../src/executor/check.js');
    assert.throws(() => checkSubmission(floored, { fileNames: ['main.py'], args: [], limits: { openFiles: 39 } }), /^ExecutorError: limits\.openFiles 39 is below 40, the least runtime "floored" starts with/);
    assert.throws(() => checkJudgeProgram('checker', floored, { files: [{ name: 'c.py' }], limits: { openFiles: 39 } }, 1, 1000), /checker\.limits\.openFiles 39 is below 40/);
    assert.equal(checkSubmission(floored, { fileNames: ['main.py'], args: [] }).runLimits.openFiles, 64);
  });
});

describe('interactor', () => {
  // A compiled runtime on the test runtime's image: nothing here runs.
  const compiled: Runtime = { ...testRuntime, id: 'cc', language: 'cc', aliases: [], sourceFile: 'main.c', compile: { argv: ['/usr/bin/cc', '{args}', '{files}'] } };
  let service: ServiceHarness;
  let queue: Queue;
  const post = (body: unknown) => service.app.inject({ method: 'POST', url: '/v1/jobs', payload: body as object });
  const small = { outputBytes: 1000 };
  const interactive = {
    ...hello,
    limits: small,
    tests: [{ stdin: '21\n', expectedOutput: '42\n' }],
    interactor: { language: 'cc', source: 'int main(void) { return 0; }', compileArgs: ['-O2'], limits: small, compileLimits: small },
  };

  before(async () => {
    service = await startService({ runtimes: [testRuntime, compiled], config: { maxFiles: 2, maxJobOutputBytes: 100_000 } });
    queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: service.redis.port }, prefix: service.prefix });
  });
  after(async () => {
    await queue?.close();
    await service?.close();
  });

  test('is queued with the job, its runtime resolved and its source as its runtime names it', async () => {
    const accepted = await post(interactive);
    assert.equal(accepted.statusCode, 202, accepted.body);
    const id = (accepted.json() as { id: string }).id;
    const job = await queue.getJob(id);
    assert.deepEqual(job?.data.interactor, {
      runtimeId: 'cc',
      files: [{ name: 'main.c', contentBase64: Buffer.from('int main(void) { return 0; }').toString('base64') }],
      compileArgs: ['-O2'],
      limits: small,
      compileLimits: small,
    });
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    const plain = await post(hello);
    assert.equal(((await queue.getJob((plain.json() as { id: string }).id))?.data as { interactor?: unknown }).interactor, undefined);
  });

  test('is refused without tests, with stdin or stderrToStdout, and where its own parts are wrong', async () => {
    const { tests: _tests, ...withoutTests } = interactive;
    assert.match(assertError(await post(withoutTests), 400, 'interactor_not_applicable').message, /give tests/);
    assertError(await post({ ...interactive, stdin: 'x' }), 400, 'interactor_not_applicable');
    assertError(await post({ ...interactive, stderrToStdout: true }), 400, 'interactor_not_applicable');
    const unknown = assertError(await post({ ...interactive, interactor: { ...interactive.interactor, language: 'cobol' } }), 400, 'unknown_language');
    assert.equal(unknown.details?.field, 'interactor.language');
    assert.match(unknown.message, /^interactor: unknown language "cobol"/);
    const reserved = assertError(await post({ ...interactive, interactor: { language: 'cc', files: [{ name: 'main.c', content: '' }, { name: 'input.txt/x.h', content: '' }] } }), 400, 'invalid_file_name');
    assert.match(reserved.message, /interactor file "input.txt\/x.h"/);
    assert.equal(reserved.details?.field, 'interactor.files[1].name');
    const twice = assertError(await post({ ...interactive, interactor: { language: 'cc', files: [{ name: 'a.c', content: '' }, { name: 'a.c', content: '' }] } }), 400, 'duplicate_file_name');
    assert.equal(twice.details?.field, 'interactor.files[1].name');
    assertError(await post({ ...interactive, interactor: { language: 'cc', files: [{ name: '../x.c', content: '' }] } }), 400, 'invalid_file_name');
    assertError(await post({ ...interactive, interactor: { language: 'cc' } }), 400, 'source_or_files');
    assert.equal(assertError(await post({ ...interactive, interactor: { language: 'python', source: '', compileArgs: ['-O2'] } }), 400, 'no_compile_step').details?.field, 'interactor.compileArgs');
    const above = assertError(await post({ ...interactive, interactor: { language: 'cc', source: '', limits: { memoryBytes: 2 ** 40 } } }), 400, 'limit_above_maximum');
    assert.equal(above.details?.field, 'interactor.limits.memoryBytes');
    assertError(await post({ ...interactive, interactor: { ...interactive.interactor, stdin: 'x' } }), 400, 'invalid_request');
  });

  test("counts the interactor's output toward the job's maximum", async () => {
    // The program's 1000 bytes and the interactor's runs at 65536 and its compile.
    const output = assertError(await post({ ...interactive, interactor: { language: 'cc', source: '' } }), 400, 'job_output_above_maximum');
    assert.match(output.message, /^1 run of up to 1000 bytes, with an interactor's 1 run of up to 65536 bytes and a compile of up to \d+, could store \d+ bytes/);
    // One test: none fewer to send.
    assert.match(output.message, /\(lower limits.outputBytes or interactor.limits.outputBytes\)$/);
    const twoTests = assertError(await post({ ...interactive, tests: [...interactive.tests, ...interactive.tests], interactor: { language: 'cc', source: '' } }), 400, 'job_output_above_maximum');
    assert.match(twoTests.message, /\(lower limits.outputBytes or interactor.limits.outputBytes or send fewer tests\)$/);
  });

  test('a checker: queued with the job; refused without tests or beside an interactor; its parts checked as an interactor\'s', async () => {
    const checked = { ...hello, limits: small, tests: [{ stdin: '15', expectedOutput: '5' }], checker: interactive.interactor };
    const accepted = await post(checked);
    assert.equal(accepted.statusCode, 202, accepted.body);
    const id = (accepted.json() as { id: string }).id;
    const job = await queue.getJob(id);
    assert.equal(job?.data.checker.runtimeId, 'cc');
    assert.equal(job?.data.interactor, undefined);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    const { tests: _tests, ...withoutTests } = checked;
    assert.match(assertError(await post(withoutTests), 400, 'checker_not_applicable').message, /a checker judges tests/);
    assert.match(assertError(await post({ ...checked, interactor: interactive.interactor }), 400, 'checker_not_applicable').message, /interactive job/);
    const many = assertError(await post({ ...checked, checker: { language: 'cc', files: ['a.c', 'b.c', 'c.c'].map((name) => ({ name, content: '' })) } }), 400, 'too_many_files');
    assert.deepEqual([many.message, many.details?.field], ['checker.files: 3 files; at most 2', 'checker.files']);
    const memory = assertError(await post({ ...checked, checker: { ...interactive.interactor, limits: { memoryBytes: 1048576 } } }), 400, 'unrunnable_job');
    assert.match(memory.message, /^checker: checker\.limits\.memoryBytes 1048576 is below/);
    const reserved = assertError(await post({ ...checked, checker: { language: 'cc', files: [{ name: 'answer.txt', content: '' }] } }), 400, 'invalid_file_name');
    assert.equal(reserved.details?.field, 'checker.files[0].name');
    assert.equal(assertError(await post({ ...checked, checker: { language: 'cobol', source: '' } }), 400, 'unknown_language').details?.field, 'checker.language');
    const output = assertError(await post({ ...checked, checker: { language: 'cc', source: '' } }), 400, 'job_output_above_maximum');
    assert.match(output.message, /with a checker's 1 run of up to 65536 bytes.*\(lower limits.outputBytes or checker.limits.outputBytes\)$/);
  });

  test("other APIs' jobs take no judge program or comparison (their fronts make none; the last check before queueing refuses one)", async () => {
    const { admissionProblem } = await import('../../src/api/submission.js');
    const request = { runtimeId: 'python', files: [{ name: 'main.py', contentBase64: '' }], stdinBase64: '', args: [], limits: {}, interactor: { runtimeId: 'cc', files: [], limits: {} } };
    const policy = { maxFiles: 2, maxTests: 2, maxArgs: 2, maxJobOutputBytes: 1e9, webhookDestinations: undefined as never };
    assert.match(admissionProblem(request, testRuntime, policy)?.reason ?? '', /takes no interactor/);
    const { interactor, ...plain } = request;
    assert.match(admissionProblem({ ...plain, checker: interactor }, testRuntime, policy)?.reason ?? '', /takes no checker/);
    assert.match(admissionProblem({ ...plain, comparison: { mode: 'tokens' } }, testRuntime, policy)?.reason ?? '', /takes no comparison/);
    // Judge0's number_of_runs stops at the first run that fails: tests that stop, which need tests.
    assert.equal(admissionProblem({ ...plain, tests: [{ stdinBase64: '' }, { stdinBase64: '' }], stopOnFailure: true }, testRuntime, policy), undefined);
    assert.match(admissionProblem({ ...plain, stopOnFailure: true }, testRuntime, policy)?.reason ?? '', /stopOnFailure stops the tests at the first that fails: give tests/);
  });
});

describe('API bad input', () => {
  let service: ServiceHarness;
  const post = (body: unknown, url = '/v1/jobs') => service.app.inject({ method: 'POST', url, payload: body as object });
  const postRaw = (contentType: string, payload: string) =>
    service.app.inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': contentType }, payload });

  before(async () => {
    service = await startService({ config: { bodyLimitBytes: 4096, maxFiles: 2, maxTests: 2, maxBatchJobs: 2, maxArgs: 3, maxJobOutputBytes: 100_000 } });
  });
  after(() => service.close());

  test('invalid JSON is 400 invalid_json', async () => {
    assertError(await postRaw('application/json', '{"language": "python", '), 400, 'invalid_json');
  });

  test('a compressed body is 415 unsupported_content_encoding, not malformed JSON', async () => {
    const body = JSON.stringify(hello);
    const sent = (coding: string) =>
      service.app.inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': 'application/json', 'content-encoding': coding }, payload: body });
    assertError(await sent('gzip'), 415, 'unsupported_content_encoding');
    assertError(await sent('br, gzip'), 415, 'unsupported_content_encoding');
    const piston = await service.app.inject({
      method: 'POST', url: '/api/v2/execute', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: '{}',
    });
    assert.equal(piston.statusCode, 415);
    assert.match(piston.json().message, /Content-Encoding "gzip"/, 'each front in its own shape');
    const identity = await sent('identity');
    assert.equal(identity.statusCode, 202, identity.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(identity.json() as { id: string }).id}` });
  });

  test('a body that is not JSON is 415 unsupported_media_type', async () => {
    assertError(await postRaw('application/xml', '<job/>'), 415, 'unsupported_media_type');
    assertError(await postRaw('text/plain', JSON.stringify({ language: 'python', source: 'print(1)' })), 415, 'unsupported_media_type');
  });

  test('an oversized body is 413 body_too_large', async () => {
    assertError(await post({ ...hello, source: 'x'.repeat(8192) }), 413, 'body_too_large');
  });

  test('schema violations are 400 invalid_request naming the field', async () => {
    const missing = assertError(await post({ source: 'x' }), 400, 'invalid_request');
    assert.match(missing.message, /language/);
    const unknownField = assertError(await post({ ...hello, colour: 'blue' }), 400, 'invalid_request');
    assert.match(unknownField.message, /colour/);
    const negative = assertError(await post({ ...hello, limits: { cpuTimeMs: -5 } }), 400, 'invalid_request');
    assert.match(negative.message, /cpuTimeMs/);
    assertError(await post({ ...hello, limits: { gpus: 1 } }), 400, 'invalid_request');
    // Every limit is at least what the engine takes (a positive number): refused here naming the
    // field, not by the worker's check behind it (unrunnable_job).
    for (const field of ['outputBytes', 'fileSizeBytes', 'tmpBytes']) {
      const zero = assertError(await post({ ...hello, limits: { [field]: 0 } }), 400, 'invalid_request');
      assert.match(zero.message, new RegExp(`^body/limits/${field} must be >= 1`));
    }
    assertError(await post({ ...hello, args: 'not-a-list' }), 400, 'invalid_request');
    assertError(await post([1, 2, 3]), 400, 'invalid_request');
  });

  test('a key that could set a prototype is 400 invalid_request saying so, on each route that parses JSON, in its shape', async () => {
    const poisoned = [
      '{"language": "python", "source": "print(1)", "__proto__": {"admin": true}}',
      '{"language": "python", "source": "print(1)", "limits": {"constructor": {"prototype": {"admin": true}}}}',
    ];
    for (const body of poisoned) {
      const refused = assertError(await postRaw('application/json', body), 400, 'invalid_request');
      assert.match(refused.message, /__proto__.*constructor.*not accepted/);
      // After a byte order mark, which the parser skips, the same.
      assertError(await postRaw('application/json', `\ufeff${body}`), 400, 'invalid_request');
      const batch = await service.app.inject({ method: 'POST', url: '/v1/jobs/batch', headers: { 'content-type': 'application/json' }, payload: `{"jobs": [${body}]}` });
      assertError(batch, 400, 'invalid_request');
      const judge0 = await service.app.inject({ method: 'POST', url: '/submissions', headers: { 'content-type': 'application/json' }, payload: body.replace('"language": "python"', '"language_id": 71') });
      assert.equal(judge0.statusCode, 400, judge0.body);
      assert.match((judge0.json() as { error: string }).error, /__proto__.*not accepted/, "Judge0's shape");
    }
    // The words as values, or as keys where they set nothing, are no such key.
    const printed = await post({ language: 'python', source: 'print({"__proto__": 1, "constructor": {"prototype": 2}})' });
    assert.equal(printed.statusCode, 202, printed.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(printed.json() as { id: string }).id}` });
    assertError(await postRaw('application/json', '{"language": "python", "__proto__": '), 400, 'invalid_json');
  });

  test('unknown language and version', async () => {
    assertError(await post({ language: 'cobol', source: 'x' }), 400, 'unknown_language');
    assertError(await post({ language: 'python', version: '2.7', source: 'x' }), 400, 'unknown_version');
  });

  test('limits above the runtime maximum are 400 limit_above_maximum', async () => {
    const error = assertError(
      await post({ ...hello, limits: { memoryBytes: testRuntime.maxLimits.memoryBytes + 1 } }),
      400,
      'limit_above_maximum',
    );
    assert.match(error.message, /memoryBytes/);
  });

  // The engine's least memory limit: 1 MiB, and what execve copies (arguments, environment).
  test('a memory limit below 1 MiB, or one the arguments do not fit in, is a 400', async () => {
    const below = assertError(await post({ ...hello, limits: { memoryBytes: 1024 * 1024 - 1 } }), 400, 'invalid_request');
    assert.match(below.message, /memoryBytes/);
    const args = assertError(await post({ ...hello, args: ['x'.repeat(1000), 'y'.repeat(1000)], limits: { memoryBytes: 1024 * 1024 } }), 400, 'unrunnable_job');
    assert.match(args.message, /^limits\.memoryBytes 1048576 is below \d+: the program's arguments/);
    const accepted = await post({ ...hello, args: ['x'.repeat(1000)], limits: { memoryBytes: 2 * 1024 * 1024 } });
    assert.equal(accepted.statusCode, 202, accepted.body);
    // Out of the queue again: other tests here count what waits in it.
    const cancelled = await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(accepted.json() as { id: string }).id}` });
    assert.equal(cancelled.statusCode, 200, cancelled.body);
  });

  test('compileLimits for a runtime without a compile step are 400 no_compile_step', async () => {
    const error = assertError(await post({ ...hello, compileLimits: { cpuTimeMs: 1000 } }), 400, 'no_compile_step');
    assert.equal(error.details?.field, 'compileLimits');
  });

  test('stderrToStdout and stopOnFailure are queued with the job when true, and must be booleans', async () => {
    const queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: service.redis.port }, prefix: service.prefix });
    try {
      for (const field of ['stderrToStdout', 'stopOnFailure'] as const) {
        for (const [value, queued] of [[true, true], [false, undefined]] as const) {
          const accepted = await post({ ...hello, tests: [{ stdin: '' }], [field]: value });
          assert.equal(accepted.statusCode, 202, accepted.body);
          const id = (accepted.json() as { id: string }).id;
          assert.equal((await queue.getJob(id))?.data[field], queued);
          await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
        }
        assertError(await post({ ...hello, [field]: 'yes' }), 400, 'invalid_request');
      }
    } finally {
      await queue.close();
    }
    assert.equal(assertError(await post({ ...hello, stopOnFailure: true }), 400, 'stop_on_failure_not_applicable').details?.field, 'stopOnFailure');
  });

  test('comparison: queued with the job unless it is the default; refused without tests, beside a judge, or with a tolerance outside tokens', async () => {
    const tests = [{ stdin: '', expectedOutput: '1.5\n' }];
    const queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: service.redis.port }, prefix: service.prefix });
    try {
      for (const [comparison, queued] of [
        [{ mode: 'tokens', floatTolerance: 1e-6 }, { mode: 'tokens', floatTolerance: 1e-6 }],
        [{ mode: 'exact' }, { mode: 'exact' }],
        [{ mode: 'lines' }, undefined],
      ] as const) {
        const accepted = await post({ ...hello, tests, comparison });
        assert.equal(accepted.statusCode, 202, accepted.body);
        const id = (accepted.json() as { id: string }).id;
        assert.deepEqual((await queue.getJob(id))?.data.comparison, queued);
        await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
      }
    } finally {
      await queue.close();
    }
    const tolerance = assertError(await post({ ...hello, tests, comparison: { mode: 'lines', floatTolerance: 0.1 } }), 400, 'invalid_comparison');
    assert.deepEqual([tolerance.message, tolerance.details?.field], ['comparison.floatTolerance applies to mode "tokens" only: numbers are compared as the words of the output', 'comparison']);
    assert.match(assertError(await post({ ...hello, comparison: { mode: 'exact' } }), 400, 'comparison_not_applicable').message, /give tests/);
    const judged = assertError(await post({ ...hello, tests, comparison: { mode: 'exact' }, checker: { language: 'python', source: '' } }), 400, 'comparison_not_applicable');
    assert.match(judged.message, /its judge program judges each test/);
    for (const comparison of [{ mode: 'words' }, { mode: 'tokens', floatTolerance: -1 }, { mode: 'tokens', floatTolerance: '1e-6' }, { floatTolerance: 1 }, 'tokens', { mode: 'tokens', extra: 1 }]) {
      assertError(await post({ ...hello, tests, comparison }), 400, 'invalid_request');
    }
    // The worker's own check, for jobs no front checked.
    const { comparisonProblem } = await import('../../src/executor/check.js');
    assert.equal(comparisonProblem({ comparison: { mode: 'words' }, tests: [], judged: false })?.code, 'invalid_comparison');
    assert.equal(comparisonProblem({ comparison: { mode: 'tokens', floatTolerance: Number.NaN }, tests: [], judged: false })?.code, 'invalid_comparison');
    assert.equal(comparisonProblem({ comparison: { mode: 'tokens', floatTolerance: 0 }, tests: [], judged: false }), undefined);
  });

  test('outputFiles: queued with the job; names, duplicates and count checked as files are', async () => {
    const queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: service.redis.port }, prefix: service.prefix });
    try {
      // Each output file may hold as much as the run's output: 3 x 65536 would pass this server's 100000.
      const above = assertError(await post({ ...hello, outputFiles: ['out.txt', 'dir/res.txt'] }), 400, 'job_output_above_maximum');
      // No tests: none to send fewer of.
      assert.match(above.message, /and as much for each of 2 output files.*\(lower limits\.outputBytes or send fewer outputFiles\)$/);
      // One test: none fewer to send either; two: fewer tests.
      const oneTest = assertError(await post({ ...hello, tests: [{}], outputFiles: ['out.txt', 'dir/res.txt'] }), 400, 'job_output_above_maximum');
      assert.match(oneTest.message, /\(lower limits\.outputBytes or send fewer outputFiles\)$/);
      const withTests = assertError(await post({ ...hello, tests: [{}, {}], outputFiles: ['out.txt', 'dir/res.txt'] }), 400, 'job_output_above_maximum');
      assert.match(withTests.message, /\(lower limits\.outputBytes or send fewer tests or outputFiles\)$/);
      const accepted = await post({ ...hello, outputFiles: ['out.txt', 'dir/res.txt'], limits: { outputBytes: 1000 } });
      assert.equal(accepted.statusCode, 202, accepted.body);
      const id = (accepted.json() as { id: string }).id;
      assert.deepEqual((await queue.getJob(id))?.data.outputFiles, ['out.txt', 'dir/res.txt']);
      await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    } finally {
      await queue.close();
    }
    assertError(await post({ ...hello, outputFiles: ['../etc/passwd'] }), 400, 'invalid_file_name');
    assertError(await post({ ...hello, outputFiles: ['a', 'a'] }), 400, 'duplicate_file_name');
    const tooMany = assertError(await post({ ...hello, outputFiles: ['a', 'b', 'c'] }), 400, 'too_many_files');
    assert.match(tooMany.message, /3 output files; at most 2/);
    assertError(await post({ ...hello, outputFiles: [''] }), 400, 'invalid_request');
    // 128 characters, 256 bytes: more than one directory entry's name may hold.
    const long = assertError(await post({ ...hello, outputFiles: ['é'.repeat(128)] }), 400, 'invalid_file_name');
    assert.match(long.message, /longer than 255 bytes/);
    assertError(await post({ language: 'python', files: [{ name: `dir/${'é'.repeat(128)}`, content: '' }] }), 400, 'invalid_file_name');
  });

  test('compileArgs for a runtime without a compile step are 400 no_compile_step', async () => {
    const error = assertError(await post({ ...hello, compileArgs: ['-O0'] }), 400, 'no_compile_step');
    assert.equal(error.details?.field, 'compileArgs');
    // None at all is no compile argument.
    const none = await post({ ...hello, compileArgs: [] });
    assert.equal(none.statusCode, 202, none.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(none.json() as { id: string }).id}` });
  });

  test('source and files: exactly one', async () => {
    assertError(await post({ language: 'python' }), 400, 'source_or_files');
    assertError(await post({ ...hello, files: [{ name: 'a.py', content: 'x' }] }), 400, 'source_or_files');
  });

  test('files: count, names, base64', async () => {
    const file = (name: string) => ({ name, content: 'print(1)' });
    assertError(await post({ language: 'python', files: [file('a.py'), file('b.py'), file('c.py')] }), 400, 'too_many_files');
    assertError(await post({ language: 'python', files: [file('../escape.py')] }), 400, 'invalid_file_name');
    assertError(await post({ language: 'python', files: [file('/etc/passwd')] }), 400, 'invalid_file_name');
    assertError(await post({ language: 'python', files: [file('a//b.py')] }), 400, 'invalid_file_name');
    // {files} expands to the names: one starting with "-" or "@" would be an option to the compiler.
    assertError(await post({ language: 'python', files: [file('main.py'), file('-wrapper')] }), 400, 'invalid_file_name');
    assertError(await post({ language: 'python', files: [file('main.py'), file('@options')] }), 400, 'invalid_file_name');
    assertError(await post({ language: 'python', files: [file('a.py'), file('a.py')] }), 400, 'duplicate_file_name');
    // Both names are fine alone; together they cannot be written (the worker would fail the job).
    assertError(await post({ language: 'python', files: [file('lib'), file('lib/a.py')] }), 400, 'unrunnable_job');
    assertError(
      await post({ language: 'python', files: [{ name: 'a.py', content: 'not base64!', base64: true }] }),
      400,
      'invalid_base64',
    );
    assertError(await post({ language: 'python', files: [{ name: 'a.py', content: 'abc', base64: true }] }), 400, 'invalid_base64');
  });

  test("a job-wide stdin beside tests is 400 stdin_not_applicable: each test takes its own", async () => {
    const refused = assertError(await post({ ...hello, stdin: 'TOP', tests: [{ stdin: 'T1' }, {}] }), 400, 'stdin_not_applicable');
    assert.equal(refused.details?.field, 'stdin');
    assert.match(refused.message, /each test with its own stdin: give the input as tests\[\]\.stdin/);
    const inBatch = assertError(await post({ jobs: [hello, { ...hello, stdin: 'TOP', tests: [{}] }] }, '/v1/jobs/batch'), 400, 'stdin_not_applicable');
    assert.deepEqual(inBatch.details, { field: 'stdin', index: 1 });
    // An empty one drops no input (as beside an interactor).
    const empty = await post({ ...hello, stdin: '', tests: [{ stdin: 'T1' }] });
    assert.equal(empty.statusCode, 202, empty.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(empty.json() as { id: string }).id}` });
  });

  test('a file name is a path of parts of at most 255 bytes, at most 1024 bytes in all', async () => {
    const part = 'd'.repeat(250);
    const deep = `${[part, part, part].join('/')}/main.py`;
    const accepted = await post({ language: 'python', files: [{ name: deep, content: 'print(1)' }], outputFiles: [`${part}/${part}/out.txt`], limits: { outputBytes: 1000 } });
    assert.equal(accepted.statusCode, 202, accepted.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(accepted.json() as { id: string }).id}` });
    const tooLong = `${[part, part, part, part].join('/')}/${'m'.repeat(27)}.py`;
    assert.equal(Buffer.byteLength(tooLong), 1034);
    const refused = assertError(await post({ language: 'python', files: [{ name: tooLong, content: '' }] }), 400, 'invalid_file_name');
    assert.equal(refused.details?.field, 'files[0].name');
    assert.match(refused.message, /is 1034 bytes long, more than 1024/);
    assertError(await post({ ...hello, outputFiles: [tooLong] }), 400, 'invalid_file_name');
    // Names that JSON tells apart and a disk would not (a lone surrogate is U+FFFD there): refused
    // before the job is queued, not failed by the worker (it was: EEXIST, internal_error).
    const surrogates = JSON.parse('{"language":"python","files":[{"name":"main.py","content":"print(1)"},{"name":"a\\ud800","content":"1"}]}');
    const lone = assertError(await post(surrogates), 400, 'invalid_file_name');
    assert.equal(lone.details?.field, 'files[1].name');
    assert.match(lone.message, /is not valid Unicode/);
    assertError(await post({ ...hello, outputFiles: [JSON.parse('"out\\udfff"')] }), 400, 'invalid_file_name');
    // A long name is quoted in part: not echoed back whole, up to the body limit.
    const longPart = assertError(await post({ language: 'python', files: [{ name: 'p'.repeat(3000), content: '' }] }), 400, 'invalid_file_name');
    assert.match(longPart.message, /^files\[0\]\.name "p{64}\.\.\." has a part longer than 255 bytes/);
  });

  test('tests, args and webhook', async () => {
    assertError(await post({ ...hello, tests: [{}, {}, {}] }), 400, 'too_many_tests');
    assertError(await post({ ...hello, args: ['1', '2', '3', '4'] }), 400, 'too_many_args');
    assertError(await post({ ...hello, webhookUrl: 'not a url' }), 400, 'invalid_webhook_url');
    assertError(await post({ ...hello, webhookUrl: 'file:///etc/passwd' }), 400, 'invalid_webhook_url');
  });

  test('Idempotency-Key: a retried submission answers its first job; another submission under the key is 422', async () => {
    const submitWith = (key: string, body: unknown = hello) =>
      service.app.inject({ method: 'POST', url: '/v1/jobs', payload: body as object, headers: { 'idempotency-key': key } });
    const waiting = async () => (await service.jobs.counts()).waiting;
    const before = await waiting();
    const first = await submitWith('order-1');
    assert.equal(first.statusCode, 202, first.body);
    const { id } = first.json() as { id: string };
    const again = await submitWith('order-1');
    assert.equal(again.statusCode, 202);
    assert.equal(again.json().id, id, 'the same job');
    assert.equal(again.json().status, 'queued');
    assert.equal(typeof again.json().createdAt, 'string', "a retry answers the job's view, as GET /v1/jobs/:id shows it");
    // At once, as a client's retry can overlap its first try: one job still.
    const racing = await Promise.all([submitWith('order-2'), submitWith('order-2'), submitWith('order-2')]);
    assert.equal(new Set(racing.map((response) => response.json().id)).size, 1);
    assert.equal(await waiting(), before + 2, 'two keys, two jobs');
    const reused = assertError(await submitWith('order-1', { language: 'python', source: 'print("other")' }), 422, 'idempotency_key_reused');
    assert.equal(reused.details?.id, id);
    const third = (await submitWith('order-3')).json().id;
    assert.notEqual(third, id, 'another key, another job');
    // The same submission with its fields in another order is the same submission.
    const limited = (limits: Record<string, number>) => ({ language: 'python', source: 'print(4)', limits });
    const ordered = await submitWith('order-4', limited({ cpuTimeMs: 1000, wallTimeMs: 3000 }));
    const reordered = await submitWith('order-4', limited({ wallTimeMs: 3000, cpuTimeMs: 1000 }));
    assert.equal(reordered.statusCode, 202, reordered.body);
    assert.equal(reordered.json().id, ordered.json().id);
    // Two tries at once with different submissions: one job, whose submission is the one answered 202.
    const [a, b] = await Promise.all([submitWith('order-5', { language: 'python', source: 'print("a")' }), submitWith('order-5', { language: 'python', source: 'print("b")' })]);
    assert.deepEqual([a.statusCode, b.statusCode].sort(), [202, 422], `${a.body} ${b.body}`);
    const winner = a.statusCode === 202 ? 'a' : 'b';
    const stored = (await service.jobs.get((a.statusCode === 202 ? a : b).json().id))!.request!;
    assert.equal(Buffer.from(stored.files[0]!.contentBase64, 'base64').toString(), `print("${winner}")`);
    // Without the deployment's secret, a key's job id cannot be worked out from the key.
    assert.notEqual(id, idempotentJobId('', '\0order-1'));
    // Cancelled while queued, the job is still the key's: it is not queued again.
    assert.equal((await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` })).json().status, 'cancelled');
    const afterCancel = await submitWith('order-1');
    assert.equal(afterCancel.json().id, id);
    assert.deepEqual([afterCancel.statusCode, afterCancel.json().status], [200, 'cancelled'], 'answered as it is now, not as queued');
    assert.equal((await service.app.inject({ url: `/v1/jobs/${id}` })).json().status, 'cancelled');
    const waited = await service.app.inject({ method: 'POST', url: '/v1/jobs?wait=true&timeoutMs=50', payload: hello, headers: { 'idempotency-key': 'order-1' } });
    assert.deepEqual([waited.statusCode, waited.json().id, waited.json().status], [200, id, 'cancelled']);
    assertError(await submitWith('x'.repeat(256)), 400, 'invalid_request');
    const batch = await service.app.inject({ method: 'POST', url: '/v1/jobs/batch', payload: { jobs: [hello] }, headers: { 'idempotency-key': 'b' } });
    assertError(batch, 400, 'idempotency_key_unsupported');
    // The tests after this one count the queue from empty.
    for (const left of [racing[0]!.json().id, third, ordered.json().id, (a.statusCode === 202 ? a : b).json().id]) {
      await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${left}` });
    }
    assert.equal(await waiting(), before);
  });

  test('a webhook or Judge0 callback to an address outside the permitted networks is refused', async () => {
    // The default destinations: anywhere but link-local, where cloud metadata services answer.
    for (const webhookUrl of ['http://169.254.169.254/latest/meta-data', 'http://[fe80::1]:8080/', 'https://[::ffff:169.254.169.254]/']) {
      const refused = assertError(await post({ ...hello, webhookUrl }), 400, 'webhook_url_not_allowed');
      assert.match(refused.message, /not a permitted destination/);
    }
    const judge0 = await service.app.inject({
      method: 'POST',
      url: '/submissions',
      // Files and stdout of 64 KB: Judge0's default 1024 KB would pass this service's job output maximum (100,000 bytes).
      payload: { source_code: 'print(1)', language_id: 71, max_file_size: 64, callback_url: 'http://169.254.169.254/' },
    });
    assert.equal(judge0.statusCode, 422, judge0.body);
    assert.deepEqual(judge0.json(), { callback_url: ['is not a permitted destination'] });
  });

  test('the output a job could store: every run\'s outputBytes added up, at most the maximum', async () => {
    // The runtime's default is 64 KiB per run: one run fits 100,000 bytes, two do not.
    const refused = assertError(await post({ ...hello, tests: [{}, {}] }), 400, 'job_output_above_maximum');
    assert.deepEqual(refused.details, { outputBytes: 2 * 65_536, maximum: 100_000 });
    assert.match(refused.message, /2 runs of up to 65536 bytes could store 131072 bytes of output; at most 100000 per job/);
    for (const fits of [{ ...hello, tests: [{}] }, { ...hello, tests: [{}, {}], limits: { outputBytes: 50_000 } }]) {
      const accepted = await post(fits);
      assert.equal(accepted.statusCode, 202, accepted.body);
      await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(accepted.json() as { id: string }).id}` });
    }
  });

  test('a batch takes no query parameters: wait and the others of POST /v1/jobs are refused saying so, unknown ones as there', async () => {
    const waiting = async () => (await service.jobs.counts()).waiting;
    const before = await waiting();
    const waited = assertError(await post({ jobs: [hello] }, '/v1/jobs/batch?wait=true'), 400, 'invalid_request');
    assert.match(waited.message, /takes no wait .*answered at once/);
    const others = assertError(await post({ jobs: [hello] }, '/v1/jobs/batch?timeoutMs=5&outputEncoding=base64'), 400, 'invalid_request');
    assert.match(others.message, /takes no timeoutMs, outputEncoding/);
    const unknown = assertError(await post({ jobs: [hello] }, '/v1/jobs/batch?foo=bar'), 400, 'invalid_request');
    assert.equal(unknown.message, assertError(await post(hello, '/v1/jobs?foo=bar'), 400, 'invalid_request').message);
    assert.equal(await waiting(), before, 'nothing queued');
  });

  test('every /v1 route refuses an unknown query parameter, in the same words: the runtime list and live tickets too', async () => {
    const expected = assertError(await post(hello, '/v1/jobs?foo=bar'), 400, 'invalid_request');
    assert.equal(expected.message, 'querystring must not have additional properties (foo)');
    const routes = [['GET', '/v1/jobs/nope?foo=bar'], ['GET', '/v1/live?foo=bar'], ['GET', '/v1/runtimes?foo=bar'], ['POST', '/v1/live/tickets?foo=bar']] as const;
    for (const [method, url] of routes) {
      const refused = assertError(await service.app.inject({ method, url }), 400, 'invalid_request');
      assert.deepEqual([refused.message, refused.details], [expected.message, expected.details], url);
    }
    // Without one, as before.
    assert.equal((await service.app.inject({ url: '/v1/runtimes' })).statusCode, 200);
    assert.equal((await service.app.inject({ method: 'POST', url: '/v1/live/tickets' })).statusCode, 201);
  });

  test('batches: size, and the index of the bad job', async () => {
    assertError(await post({ jobs: [hello, hello, hello] }, '/v1/jobs/batch'), 400, 'batch_too_large');
    const error = assertError(await post({ jobs: [hello, { language: 'cobol', source: 'x' }] }, '/v1/jobs/batch'), 400, 'unknown_language');
    assert.match(error.message, /jobs\[1\]/);
    assertError(await post({ jobs: [] }, '/v1/jobs/batch'), 400, 'invalid_request');
  });

  test("a batch the schema refuses names its bad job too: the first of them in details.index, all in details.indexes; none for the batch's own fault", async () => {
    const one = assertError(await post({ jobs: [hello, { language: 'python', source: 1 }] }, '/v1/jobs/batch'), 400, 'invalid_request');
    assert.deepEqual(one.details, { issues: [{ path: 'body/jobs/1/source', message: 'must be string' }], index: 1 });
    const two = assertError(await post({ jobs: [hello, { ...hello, limits: { cpuTimeMs: 0 } }, { ...hello, wat: 1 }] }, '/v1/jobs/batch'), 400, 'invalid_request');
    assert.equal(two.details?.index, 1);
    assert.deepEqual(two.details?.indexes, [1, 2]);
    // An issue of the batch itself (beside its jobs): no job to name.
    const own = assertError(await post({ jobs: [{ language: 'python', source: 1 }], wat: 1 }, '/v1/jobs/batch'), 400, 'invalid_request');
    assert.equal(own.details?.index, undefined);
    assert.equal((own.details?.issues as unknown[]).length, 2);
  });

  test('a query parameter documented as an integer is refused unless written as one: timeoutMs=1.5 is not 1', async () => {
    const waiting = async () => (await service.jobs.counts()).waiting;
    const before = await waiting();
    for (const written of ['1.5', '0x10', '1e3', ' 5', '']) {
      const refused = assertError(await post(hello, `/v1/jobs?wait=true&timeoutMs=${encodeURIComponent(written)}`), 400, 'invalid_request');
      assert.deepEqual(refused.details, { issues: [{ path: 'querystring/timeoutMs', message: 'must be an integer, written in decimal digits' }] }, written);
    }
    assert.equal(await waiting(), before, 'nothing queued');
    const taken = await post(hello, '/v1/jobs?wait=true&timeoutMs=50');
    assert.equal(taken.statusCode, 202, taken.body);
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${(taken.json() as { id: string }).id}` });
  });

  test('a batch is queued in one transaction (all or none): its jobs\' scripts between MULTI and EXEC', async () => {
    // monitor() opens a connection of its own in monitor mode; this one only starts it.
    const starter = new Redis(service.redis.port, '127.0.0.1');
    const monitor = await starter.monitor();
    starter.disconnect();
    const seen: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.map(String)));
    const commands = () => seen.map((args) => args[0]!.toLowerCase());
    try {
      const accepted = await post({ jobs: [hello, hello] }, '/v1/jobs/batch');
      assert.equal(accepted.statusCode, 202, accepted.body);
      const ids = (accepted.json() as { jobs: { id: string }[] }).jobs.map((job) => job.id);
      await until(() => commands().includes('exec'), 5000, 10, 'the EXEC seen');
      // Both jobs' hashes written inside it (MONITOR shows a script's own commands; other
      // connections' commands, the API's queue depth read say, may come between in its order).
      const multi = commands().indexOf('multi');
      assert.ok(multi >= 0, `MULTI before the adds: ${commands().join(' ')}`);
      const inside = seen.slice(multi + 1, commands().indexOf('exec', multi));
      for (const id of ids) {
        assert.ok(inside.some((args) => args[0]!.toLowerCase() === 'hmset' && args[1]!.endsWith(`:${id}`)), `job ${id} added inside it: ${commands().join(' ')}`);
      }
      for (const id of ids) await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    } finally {
      monitor.disconnect();
    }
  });

  test("a result whose JSON text is longer than V8's longest string is answered all the same, as text made as it is sent", async () => {
    // 90 tests of 1 MiB of NUL bytes: escaped as \u0000, 540 Mi characters, past V8's longest
    // string (until the views were streamed, a 406 response_too_large); as base64, 120 MiB. One
    // stored string, shared by every stage.
    const nulBase64 = Buffer.alloc(1 << 20).toString('base64');
    const stage: StoredStage = {
      verdict: 'ok', exitCode: 0, signal: null, signalName: null, stdoutBase64: nulBase64, stderrBase64: '',
      stdoutTruncated: false, stderrTruncated: false, cpuTimeMs: 1, wallTimeMs: 1, peakMemoryBytes: 1, passed: null,
    };
    const id = 'A'.repeat(21);
    const record: JobRecord = {
      id, status: 'done', createdAt: new Date().toISOString(),
      result: { verdict: 'ok', runtime: { id: 'python', language: 'python', version: '3' }, tests: Array(90).fill(stage), queueWaitMs: 0 },
    };
    const get = service.jobs.get.bind(service.jobs);
    service.jobs.get = async (asked) => (asked === id ? record : get(asked));
    try {
      // Read as it comes, never whole: its head, its tail and its length.
      const text = await service.app.inject({ method: 'GET', url: `/v1/jobs/${id}`, payloadAsStream: true });
      assert.equal(text.statusCode, 200);
      let bytes = 0;
      let head = '';
      let tail = '';
      for await (const chunk of text.stream() as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (head.length < 100) head += chunk.toString('latin1', 0, 100);
        tail = (tail + chunk.toString('latin1')).slice(-200);
      }
      assert.ok(bytes > 90 * 6 * (1 << 20), `${bytes} bytes`);
      assert.ok(head.startsWith(`{"id":"${id}","status":"done"`), head);
      assert.ok(tail.includes('\\u0000\\u0000","stderr":"",') && tail.endsWith('"passed":null}]}}'), tail);
      const base64 = await service.app.inject({ method: 'GET', url: `/v1/jobs/${id}?outputEncoding=base64` });
      assert.equal(base64.statusCode, 200);
      assert.equal(base64.json().result.tests[89].stdout, nulBase64);
    } finally {
      service.jobs.get = get;
    }
  });

  test('unknown job ids and routes are 404', async () => {
    assertError(await service.app.inject({ method: 'GET', url: '/v1/jobs/doesnotexist' }), 404, 'job_not_found');
    assertError(await service.app.inject({ method: 'GET', url: '/v1/jobs/bad%20id%3A%2A' }), 404, 'job_not_found');
    assertError(await service.app.inject({ method: 'DELETE', url: '/v1/jobs/doesnotexist' }), 404, 'job_not_found');
    // BullMQ's own keys sit beside the jobs' under the queue's prefix: none of them is a job.
    for (const key of ['meta', 'wait', 'id', 'events', 'marker', 'active', 'completed', 'stalled-check']) {
      for (const method of ['GET', 'DELETE'] as const) {
        assertError(await service.app.inject({ method, url: `/v1/jobs/${key}` }), 404, 'job_not_found');
      }
      assert.equal((await service.app.inject({ method: 'GET', url: `/submissions/${key}` })).statusCode, 404, `Judge0 token ${key}`);
    }
    assertError(await service.app.inject({ method: 'GET', url: '/v1/nothing-here' }), 404, 'route_not_found');
    assertError(await service.app.inject({ method: 'GET', url: '/v1/jobs/x?outputEncoding=rot13' }), 400, 'invalid_request');
    // Refused by the router before any route: the same error shape all the same.
    assertError(await service.app.inject({ method: 'GET', url: '/v1/jobs/%E0%A4%A' }), 400, 'bad_url');
    // A message quotes the start of a long path, not all of it.
    const tooLong = assertError(await service.app.inject({ method: 'GET', url: `/v1/jobs/${'a'.repeat(5000)}` }), 414, 'url_too_long');
    assert.equal(tooLong.message, `a path parameter of "/v1/jobs/${'a'.repeat(55)}..." is longer than the router takes (100 characters)`);
    const noRoute = assertError(await service.app.inject({ method: 'GET', url: `/v1/${'b'.repeat(5000)}` }), 404, 'route_not_found');
    assert.equal(noRoute.message, `no route GET "/v1/${'b'.repeat(60)}..."`);
  });

  test('what the HTTP parser refuses gets the same error shape, then the connection closes', async () => {
    const address = await service.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(address);
    /** Writes `raw`, half-closes, and returns the status and body of the answer. */
    const exchange = (raw: string) =>
      new Promise<{ statusCode: number; body: unknown }>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.end(raw));
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('error', reject);
        socket.on('close', () => {
          const text = Buffer.concat(chunks).toString();
          const [head, body] = [text.slice(0, text.indexOf('\r\n\r\n')), text.slice(text.indexOf('\r\n\r\n') + 4)];
          resolve({ statusCode: Number(head.split(' ')[1]), body: JSON.parse(body) });
        });
      });
    const body = JSON.stringify(hello);
    const post = (headers: string, payload = body) => `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${headers}\r\n${payload}`;
    const refused = async (raw: string, statusCode: number, code: string) => {
      const answer = await exchange(raw);
      assert.equal(answer.statusCode, statusCode, JSON.stringify(answer));
      const error = (answer.body as { error: { code: string; message: string } }).error;
      assert.equal(error.code, code);
      assert.ok(error.message.length > 0);
    };
    await refused(post('Content-Length: 500\r\n'), 400, 'bad_request'); // the body ends short of its length
    await refused(post(`Transfer-Encoding: chunked\r\nContent-Length: ${body.length}\r\n`), 400, 'bad_request');
    await refused(post(`X-Padding: ${'a'.repeat(20_000)}\r\nContent-Length: ${body.length}\r\n`), 431, 'headers_too_large');
  });

  test('a good job is accepted, readable, and cancelled while queued', async () => {
    const accepted = await post(hello);
    assert.equal(accepted.statusCode, 202, accepted.body);
    const { id, status } = accepted.json() as { id: string; status: string };
    assert.equal(status, 'queued');
    assert.match(id, /^[A-Za-z0-9_-]{21}$/);
    const queued = await service.app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
    assert.equal(queued.statusCode, 200);
    assert.equal(queued.json().status, 'queued');
    const submission = (await service.jobs.get(id))?.request;
    assert.ok(submission);
    const cancelled = await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.equal(cancelled.json().status, 'cancelled');
    const after = await service.app.inject({ method: 'GET', url: `/v1/jobs/${id}` });
    assert.equal(after.json().status, 'cancelled');
    assert.equal((await service.jobs.counts()).waiting, 0, 'a cancelled queued job must leave the queue');
    assert.deepEqual((await service.jobs.get(id))?.request, submission, 'its record keeps the submission (Judge0 shows it)');
  });

  test('health, readiness without workers, runtimes, OpenAPI, metrics', async () => {
    assert.equal((await service.app.inject({ url: '/healthz' })).statusCode, 200);
    const ready = await service.app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.deepEqual(ready.json(), { status: 'no_workers', redis: 'ok', workers: 0 });
    const runtimes = await service.app.inject({ url: '/v1/runtimes' });
    assert.equal(runtimes.statusCode, 200);
    assert.equal(runtimes.json()[0].id, 'python');
    const openapi = await service.app.inject({ url: '/docs/json' });
    assert.equal(openapi.statusCode, 200);
    const paths = Object.keys(openapi.json().paths);
    for (const path of ['/v1/jobs', '/v1/jobs/batch', '/v1/jobs/{id}', '/v1/runtimes', '/readyz']) assert.ok(paths.includes(path), path);
    // Routes that run code name every header a key may come in (none needed: no keys configured).
    const doc = openapi.json();
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['X-API-Key', 'X-Auth-Token', 'X-RapidAPI-Key', 'bearer', 'liveTicket']);
    assert.deepEqual(doc.paths['/v1/jobs'].post.security, [{ bearer: [] }, { 'X-API-Key': [] }, {}]);
    // The live sockets take a ticket in place of a key header; the route that issues one does not.
    assert.deepEqual(doc.paths['/v1/live'].get.security, [{ bearer: [] }, { 'X-API-Key': [] }, { liveTicket: [] }, {}]);
    assert.deepEqual(doc.paths['/api/v2/connect'].get.security, [{ bearer: [] }, { 'X-API-Key': [] }, { liveTicket: [] }, {}]);
    assert.deepEqual(doc.paths['/v1/live/tickets'].post.security, [{ bearer: [] }, { 'X-API-Key': [] }, {}]);
    const judge0Submissions = paths.find((path) => path.endsWith('/submissions') && !path.startsWith('/v1'));
    assert.ok(judge0Submissions, 'the Judge0 front is in the document');
    assert.deepEqual(doc.paths[judge0Submissions].post.security, [{ bearer: [] }, { 'X-API-Key': [] }, { 'X-Auth-Token': [] }, { 'X-RapidAPI-Key': [] }, {}]);
    assert.equal(doc.paths['/readyz'].get.security, undefined);
    const metrics = await service.app.inject({ url: '/metrics' });
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /^cellblock_redis_up 1$/m);
    assert.match(metrics.body, /^cellblock_queue_jobs\{state="waiting"\} \d+$/m);
    assert.match(metrics.body, /^cellblock_job_latency_seconds_count \d+$/m);
  });
});

describe('API under pressure', () => {
  test('a full queue answers 429 queue_full with Retry-After', async () => {
    const service = await startService({ maxQueuedJobs: 2 });
    try {
      for (let i = 0; i < 2; i++) {
        const response = await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello });
        assert.equal(response.statusCode, 202);
      }
      const full = await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello });
      assertError(full, 429, 'queue_full');
      assert.ok(Number(full.headers['retry-after']) > 0);
    } finally {
      await service.close();
    }
  });

  test('a batch of more jobs than may ever wait is 400 batch_above_queue_maximum, however empty the queue; one that fits an empty queue but not this one is 429', async () => {
    const service = await startService({ maxQueuedJobs: 3 });
    try {
      const batch = (size: number) => service.app.inject({ method: 'POST', url: '/v1/jobs/batch', payload: { jobs: Array.from({ length: size }, () => hello) } });
      const neverFits = await batch(4);
      const error = assertError(neverFits, 400, 'batch_above_queue_maximum');
      assert.deepEqual(error.details, { jobs: 4, maximum: 3 });
      assert.equal(neverFits.headers['retry-after'], undefined, 'nothing to retry');
      assert.equal((await service.jobs.counts()).waiting, 0);
      assert.equal((await batch(3)).statusCode, 202);
      const full = await batch(1);
      assertError(full, 429, 'queue_full');
      assert.ok(Number(full.headers['retry-after']) > 0);
      assertError(await batch(4), 400, 'batch_above_queue_maximum');
    } finally {
      await service.close();
    }
  });

  test('a burst of concurrent submissions to one API process never admits past the maximum', async () => {
    const service = await startService({ maxQueuedJobs: 10 });
    try {
      // No worker takes them: every admitted job stays waiting. 30 at once, each passing the check
      // while the others' adds are under way.
      const answers = await Promise.all(Array.from({ length: 30 }, () => service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello })));
      const statuses = answers.map((answer) => answer.statusCode);
      assert.deepEqual([statuses.filter((status) => status === 202).length, statuses.filter((status) => status === 429).length], [10, 20], statuses.join(' '));
      assert.equal((await service.jobs.counts()).waiting, 10);
    } finally {
      await service.close();
    }
  });

  test('a submission does not wait for a read of the queue depth once one was made', async () => {
    const service = await startService({ maxQueuedJobs: 100 });
    const queue = (service.jobs as unknown as { queue: { count(): Promise<number> } }).queue;
    const count = queue.count.bind(queue);
    try {
      const first = await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello });
      assert.equal(first.statusCode, 202);
      // From here every read of the depth hangs: a submission made after the last read has grown
      // old starts the next read and must still be answered, on the last read.
      let reads = 0;
      queue.count = () => {
        reads++;
        return new Promise<number>(() => {});
      };
      await new Promise((resolve) => setTimeout(resolve, 300));
      const answered = await Promise.race([
        service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello }),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3000)),
      ]);
      assert.equal(answered?.statusCode, 202, 'the submission waited for the depth read');
      assert.equal(reads, 1, 'the old read started the next one');
    } finally {
      queue.count = count;
      await service.close();
    }
  });

  test('a queue that drained is not refused on an old read of its depth', async () => {
    const service = await startService({ maxQueuedJobs: 2 });
    const queue = new Queue(QUEUE_NAME, { connection: { host: '127.0.0.1', port: service.redis.port }, prefix: service.prefix });
    try {
      for (let i = 0; i < 2; i++) {
        assert.equal((await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello })).statusCode, 202);
      }
      assertError(await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello }), 429, 'queue_full');
      await queue.drain();
      // The last read (2 waiting) is younger than the read interval; a cap that looks reached is read again.
      assert.equal((await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello })).statusCode, 202);
    } finally {
      await queue.close();
      await service.close();
    }
  });

  test('a request that comes while the API stops: 503 shutting_down with Retry-After, its connection closed; one held for its job is answered at once, its connection closed too; the document lists the 503, and no 401 without keys', async () => {
    const service = await startService({ config: { maxWaitMs: 30_000 } });
    let closing: Promise<void> | undefined;
    try {
      const document = (await service.app.inject({ url: '/docs/json' })).json();
      const responses = document.paths['/v1/runtimes'].get.responses;
      assert.ok(responses['503'] && responses['429'], Object.keys(responses).join(' '));
      assert.equal(responses['401'], undefined, 'no key is checked without keys');
      const port = Number(new URL(await listen(service)).port);
      const opened = (): { socket: Socket; received: () => string; ended: Promise<unknown> } => {
        const socket = connect(port, '127.0.0.1');
        let received = '';
        socket.on('data', (chunk) => (received += chunk.toString('latin1')));
        return { socket, received: () => received, ended: new Promise((resolve) => socket.on('close', resolve)) };
      };
      // One connection holds a request (a wait no worker ends); another is open and idle, as a
      // client's pool keeps it.
      const held = opened();
      const body = JSON.stringify(hello);
      held.socket.write(`POST /v1/jobs?wait=true HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      const idle = opened();
      idle.socket.write('GET /v1/runtimes HTTP/1.1\r\nHost: x\r\n\r\n');
      await until(() => /\r\n\r\n/.test(idle.received()), 5000, 5, 'the first answer');
      assert.match(idle.received(), /^HTTP\/1\.1 200 [\s\S]*\r\nconnection: keep-alive\r\n/i);
      await new Promise((resolve) => setTimeout(resolve, 200));
      // The server's own close (which ends idle connections) comes after the app's preClose work:
      // a live socket's job to cancel, say. Held back here so that a request meets that moment.
      const server = service.app.server;
      const closeServer = server.close.bind(server);
      server.close = ((callback?: (error?: Error) => void) => {
        setTimeout(() => closeServer(callback), 1000);
        return server;
      }) as typeof server.close;
      const stopAt = Date.now();
      closing = service.app.close();
      await held.ended;
      assert.ok(Date.now() - stopAt < 3000, `the held request was answered ${Date.now() - stopAt} ms after the stop began`);
      assert.match(held.received(), /^HTTP\/1\.1 202 /, 'the held request answered as its wait\'s end would');
      assert.match(held.received(), /\r\nconnection: close\r\n/i, 'and its connection closed');
      idle.socket.write('GET /v1/runtimes HTTP/1.1\r\nHost: x\r\n\r\n');
      await idle.ended;
      const answers = idle.received().split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers.length, 2, idle.received().slice(0, 2000));
      assert.match(answers[1]!, /^HTTP\/1\.1 503 /);
      assert.match(answers[1]!, /\r\nretry-after: 1\r\n/i);
      assert.match(answers[1]!, /\r\nconnection: close\r\n/i);
      assert.match(answers[1]!, /"code":"shutting_down"/);
      await closing;
    } finally {
      await (closing ?? service.app.close()).catch(() => {});
      await service.close();
    }
  });

  test('without Redis: 503 queue_unavailable with Retry-After, then recovery', async () => {
    const service = await startService();
    try {
      const accepted = await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello });
      const { id } = accepted.json() as { id: string };
      const redisDerived = /^cellblock_(queue_jobs|workers_alive|worker_slots|worker_running_jobs|jobs_finished_total|job_latency_seconds_count)\b/m;
      assert.match((await service.app.inject({ url: '/metrics' })).body, redisDerived);
      await service.redis.pause();
      const started = Date.now();
      const down = await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello });
      assertError(down, 503, 'queue_unavailable');
      assert.ok(Number(down.headers['retry-after']) > 0);
      assert.ok(Date.now() - started < 6000, 'must answer promptly, not hang until Redis returns');
      assertError(await service.app.inject({ url: `/v1/jobs/${id}` }), 503, 'queue_unavailable');
      const ready = await service.app.inject({ url: '/readyz' });
      assert.equal(ready.statusCode, 503);
      assert.equal(ready.json().redis, 'unreachable');
      const metricsAway = (await service.app.inject({ url: '/metrics' })).body;
      assert.match(metricsAway, /^cellblock_redis_up 0$/m);
      assert.doesNotMatch(metricsAway, redisDerived, 'no figure read from Redis before it went away is shown as current');
      assert.match(metricsAway, /^cellblock_api_process_cpu_seconds_total /m, "the process's own figures are still there");

      await service.redis.resume();
      let record: { statusCode: number; body: string } | undefined;
      for (let i = 0; i < 100; i++) {
        record = await service.app.inject({ url: `/v1/jobs/${id}` });
        if (record.statusCode === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(record?.statusCode, 200, 'the API recovers once Redis is back');
      assert.equal(JSON.parse(record!.body).status, 'queued', 'the accepted job survived the restart');
      const again = await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello });
      assert.equal(again.statusCode, 202);
    } finally {
      await service.close();
    }
  });

  test('Idempotency-Key is per API key: two callers with one key get two jobs', async () => {
    const service = await startService({ config: { apiKeys: [{ key: 'caller-one-key-0', requestsPerWindow: 100 }, { key: 'caller-two-key-0', requestsPerWindow: 100 }] } });
    try {
      const submit = (apiKey: string) =>
        service.app.inject({ method: 'POST', url: '/v1/jobs', payload: hello, headers: { 'x-api-key': apiKey, 'idempotency-key': 'shared' } });
      const one = (await submit('caller-one-key-0')).json().id;
      const two = (await submit('caller-two-key-0')).json().id;
      assert.ok(one && two && one !== two, `${one} vs ${two}`);
      assert.equal((await submit('caller-one-key-0')).json().id, one);
    } finally {
      await service.close();
    }
  });

  test('API keys: required, checked, and rate-limited per key', async () => {
    const service = await startService({
      config: {
        apiKeys: [
          { key: 'key-with-room-00', requestsPerWindow: 100 },
          { key: 'key-with-two-000', requestsPerWindow: 2 },
        ],
        rateLimitWindowMs: 60_000,
      },
    });
    try {
      assertError(await service.app.inject({ url: '/v1/runtimes' }), 401, 'api_key_required');
      assertError(await service.app.inject({ url: '/v1/runtimes', headers: { authorization: 'Bearer wrong-key-000' } }), 401, 'invalid_api_key');
      const ok = await service.app.inject({ url: '/v1/runtimes', headers: { authorization: 'Bearer key-with-room-00' } });
      assert.equal(ok.statusCode, 200);
      // The scheme's name in any case (RFC 9110); where both headers come, Authorization's key is read.
      for (const scheme of ['bearer', 'BEARER']) {
        assert.equal((await service.app.inject({ url: '/v1/runtimes', headers: { authorization: `${scheme} key-with-room-00` } })).statusCode, 200, scheme);
      }
      const both = { authorization: 'Bearer wrong-key-000', 'x-api-key': 'key-with-room-00' };
      assertError(await service.app.inject({ url: '/v1/runtimes', headers: both }), 401, 'invalid_api_key');
      const headers = { 'x-api-key': 'key-with-two-000' };
      assert.equal((await service.app.inject({ url: '/v1/runtimes', headers })).statusCode, 200);
      assert.equal((await service.app.inject({ url: '/v1/runtimes', headers })).statusCode, 200);
      const limited = await service.app.inject({ url: '/v1/runtimes', headers });
      assertError(limited, 429, 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      // The other key has its own budget; health stays open without a key.
      assert.equal((await service.app.inject({ url: '/v1/runtimes', headers: { authorization: 'Bearer key-with-room-00' } })).statusCode, 200);
      assert.equal((await service.app.inject({ url: '/healthz' })).statusCode, 200);
      // With keys configured, the document no longer offers a keyless call.
      const doc = (await service.app.inject({ url: '/docs/json' })).json();
      assert.deepEqual(doc.paths['/v1/runtimes'].get.security, [{ bearer: [] }, { 'X-API-Key': [] }]);
    } finally {
      await service.close();
    }
  });

  test('API keys: requests without a valid key are rate-limited by client address (CELLBLOCK_RATE_LIMIT_REQUESTS), a valid key from that address by its own', async () => {
    const service = await startService({
      rateLimitInRedis: true,
      config: { apiKeys: [{ key: 'key-with-room-00', requestsPerWindow: 100 }], defaultRequestsPerWindow: 3, rateLimitWindowMs: 60_000 },
    });
    try {
      const from = (remoteAddress: string, headers: Record<string, string> = {}) => service.app.inject({ url: '/v1/runtimes', remoteAddress, headers });
      assertError(await from('192.0.2.1'), 401, 'api_key_required');
      assertError(await from('192.0.2.1', { 'x-api-key': 'wrong-key-000' }), 401, 'invalid_api_key');
      assertError(await service.app.inject({ url: '/v1/live?ticket=not-a-ticket', remoteAddress: '192.0.2.1' }), 401, 'invalid_ticket');
      const limited = await from('192.0.2.1', { 'x-api-key': 'wrong-key-001' });
      assertError(limited, 429, 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      assertError(await from('192.0.2.1'), 429, 'rate_limited');
      // Another address has its own count; a valid key from the limited one, its key's.
      assertError(await from('192.0.2.2'), 401, 'api_key_required');
      assert.equal((await from('192.0.2.1', { 'x-api-key': 'key-with-room-00' })).statusCode, 200);
    } finally {
      await service.close();
    }
  });
});

describe('requests that never finish arriving', () => {
  /** A raw connection to the API: what it received, and when it closed. */
  const opened = (port: number, text: string): { received: () => string; ended: Promise<number> } => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => {});
    return { received: () => received, ended: new Promise((resolve) => socket.on('close', () => resolve(Date.now() - started))) };
  };
  const post = 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
  const hung = {
    'a body short of its Content-Length': `${post}Content-Length: 100\r\n\r\n{"language":`,
    'a chunked body never ended': `${post}Transfer-Encoding: chunked\r\n\r\n5\r\n{"lan\r\n`,
    'headers cut off': 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Ty',
  };

  test('are cut at CELLBLOCK_REQUEST_TIMEOUT_MS with 408 request_timeout; a ?wait held longer than it is answered', async () => {
    const service = await startService({ config: { requestTimeoutMs: 1000, maxWaitMs: 10_000 } });
    try {
      const url = await listen(service);
      const port = Number(new URL(url).port);
      const connections = Object.entries(hung).map(([name, text]) => ({ name, ...opened(port, text) }));
      const waitStarted = Date.now();
      const waited = await postJson(`${url}/v1/jobs?wait=true&timeoutMs=2500`, hello);
      assert.equal(waited.status, 202, 'answered at its own deadline, no worker having run it');
      assert.ok(Date.now() - waitStarted >= 2400, `a wait of 2.5 s answered after ${Date.now() - waitStarted} ms`);
      for (const connection of connections) {
        const closedAfterMs = await Promise.race([connection.ended, sleep(5000).then(() => Infinity)]);
        assert.ok(closedAfterMs < 1000 + 250 + 500, `${connection.name}: closed after ${closedAfterMs} ms`);
        assert.match(connection.received(), /^HTTP\/1\.1 408 [\s\S]*\r\n\r\n\{"error":\{"code":"request_timeout","message":/, connection.name);
      }
    } finally {
      await service.close();
    }
  });

  test('do not hold a stop: their connections are closed as it begins, answers in flight sent', async () => {
    const service = await startService({ config: { requestTimeoutMs: 60_000, maxWaitMs: 30_000 } });
    let closing: Promise<void> | undefined;
    try {
      const url = await listen(service);
      const port = Number(new URL(url).port);
      const connections = Object.entries(hung).map(([name, text]) => ({ name, ...opened(port, text) }));
      const waited = postJson(`${url}/v1/jobs?wait=true&timeoutMs=30000`, hello);
      await sleep(300);
      const stopAt = Date.now();
      closing = service.app.close();
      await closing;
      assert.ok(Date.now() - stopAt < 2000, `the stop took ${Date.now() - stopAt} ms`);
      assert.equal((await waited).status, 202, 'the held request answered');
      for (const connection of connections) {
        assert.notEqual(await Promise.race([connection.ended, sleep(5000).then(() => Infinity)]), Infinity, `${connection.name}: still open`);
        assert.equal(connection.received(), '', `${connection.name}: closed unanswered`);
      }
    } finally {
      await (closing ?? service.app.close()).catch(() => {});
      await service.close();
    }
  });

  test('do not cut an answer still being made: submits held 6 s by Redis are answered 202 across a stop, one with a request pipelined behind it', async () => {
    const service = await startService({ config: { requestTimeoutMs: 60_000 } });
    let closing: Promise<void> | undefined;
    try {
      const url = await listen(service);
      const port = Number(new URL(url).port);
      // A stand-in for Redis taking its time over each add (up to its 5 s timeout a step).
      const submit = service.jobs.submit.bind(service.jobs);
      let submits = 0;
      service.jobs.submit = async (request) => {
        submits += 1;
        await sleep(6000);
        return submit(request);
      };
      const body = JSON.stringify(hello);
      const held = `${post}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      const alone = opened(port, held);
      // Behind the held one, a request whose body is still coming as the stop begins.
      const pipelined = opened(port, `${held}${hung['a body short of its Content-Length']}`);
      await until(() => submits === 2, 5000);
      const stopAt = Date.now();
      closing = service.app.close();
      await closing;
      const tookMs = Date.now() - stopAt;
      assert.ok(tookMs > 5000 && tookMs < 6000 + 2000, `the stop took ${tookMs} ms`);
      for (const [name, connection] of Object.entries({ alone, pipelined })) {
        assert.notEqual(await Promise.race([connection.ended, sleep(5000).then(() => Infinity)]), Infinity, `${name}: still open`);
        assert.match(connection.received(), /^HTTP\/1\.1 202 [\s\S]*\r\n\r\n\{"id":/, name);
      }
    } finally {
      await (closing ?? service.app.close()).catch(() => {});
      await service.close();
    }
  });
});

describe("Node's parser's refusals (clientErrorHandler)", () => {
  test('are answered in our shape, but not where an answer on the connection has begun: it would land in its midst', () => {
    const refuse = (headersSent: boolean | undefined): { written: string; destroyed: boolean } => {
      const socket = new PassThrough();
      socket.on('error', () => {});
      if (headersSent !== undefined) Object.assign(socket, { _httpMessage: { headersSent } });
      const timeout = Object.assign(new Error('request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
      clientErrorHandler.call({ log: pino({ level: 'silent' }) } as unknown as FastifyInstance, timeout, socket);
      return { written: (socket.read() as Buffer | null)?.toString() ?? '', destroyed: socket.destroyed };
    };
    for (const headersSent of [undefined, false]) {
      const { written, destroyed } = refuse(headersSent);
      assert.match(written, /^HTTP\/1\.1 408 [\s\S]*\{"error":\{"code":"request_timeout"/, String(headersSent));
      assert.ok(destroyed);
    }
    assert.deepEqual(refuse(true), { written: '', destroyed: true });
  });
});

describe('WebSocket handshakes the WebSocket layer refuses', () => {
  test('are 400 invalid_upgrade in our shape (Piston\'s `{"message"}` on its route), not ws\'s text/html', async () => {
    const service = await startService();
    try {
      const port = Number(new URL(await listen(service)).port);
      const answer = (path: string, headers: string) =>
        new Promise<string>((resolve) => {
          const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n${headers}\r\n`));
          let received = '';
          socket.on('data', (chunk) => (received += chunk.toString('latin1')));
          socket.on('error', () => {});
          socket.on('close', () => resolve(received));
        });
      const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
      const cases = {
        'a malformed key': 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-a-key\r\n',
        'Upgrade: h2c': `Upgrade: h2c\r\nSec-WebSocket-Version: 13\r\n${key}`,
        'a version ws does not speak': `Upgrade: websocket\r\nSec-WebSocket-Version: 99\r\n${key}`,
      };
      for (const [name, headers] of Object.entries(cases)) {
        const received = await answer('/v1/live', headers);
        assert.match(received, /^HTTP\/1\.1 400 /, name);
        assert.match(received, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i, name);
        const body = JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'invalid_upgrade', name);
        assert.match(body.error.message, /^the WebSocket handshake is not valid: /, name);
        if (name === 'a version ws does not speak') assert.match(received, /\r\nSec-WebSocket-Version: 13, 8\r\n/i);
      }
      const piston = await answer('/api/v2/connect', cases['a malformed key']);
      assert.match(piston, /^HTTP\/1\.1 400 /);
      assert.equal(typeof (JSON.parse(piston.slice(piston.indexOf('\r\n\r\n') + 4)) as { message: string }).message, 'string');
    } finally {
      await service.close();
    }
  });
});

describe('unknown fields', () => {
  let service: ServiceHarness;
  const post = (body: unknown, url = '/v1/jobs') => service.app.inject({ method: 'POST', url, payload: body as object });
  const withUnknown = (count: number, into: Record<string, unknown> = { ...hello }) => {
    const body = { ...into };
    for (let index = 0; index < count; index++) body[`k${index}`] = 0;
    return body;
  };

  before(async () => {
    service = await startService();
  });
  after(() => service?.close());

  test('any number of them is one issue naming them (the first 10, then how many more), in and under the body', async () => {
    const named = (count: number) => Array.from({ length: Math.min(count, 10) }, (_, index) => `k${index}`).join(', ') + (count > 10 ? `, and ${count - 10} more` : '');
    for (const count of [1, 8, 1000]) {
      const refused = assertError(await post(withUnknown(count)), 400, 'invalid_request');
      const message = `must not have additional properties (${named(count)})`;
      assert.equal(refused.message, `body ${message}`, `${count} unknown fields`);
      assert.deepEqual(refused.details, { issues: [{ path: 'body', message }] }, `${count} unknown fields`);
    }
    // An object's own, beside its other issues; a batch's job's, at its index.
    const nested = assertError(await post({ ...withUnknown(8), limits: withUnknown(9, { cpuTimeMs: 'x' }) }), 400, 'invalid_request');
    assert.deepEqual(nested.details?.issues, [
      { path: 'body', message: `must not have additional properties (${named(8)})` },
      { path: 'body/limits', message: `must not have additional properties (${named(9)})` },
      { path: 'body/limits/cpuTimeMs', message: 'must be integer' },
    ]);
    const batch = assertError(await post({ jobs: [hello, withUnknown(8)] }, '/v1/jobs/batch'), 400, 'invalid_request');
    assert.equal(batch.details?.index, 1);
    assert.equal(batch.message, `body/jobs/1 must not have additional properties (${named(8)})`);
    const query = assertError(await post(hello, `/v1/jobs?${Array.from({ length: 8 }, (_, index) => `k${index}=1`).join('&')}`), 400, 'invalid_request');
    assert.equal(query.message, `querystring must not have additional properties (${named(8)})`);
  });

  test('an array of objects with unknown fields is answered with 8 issues at most, as TypeBox keeps, not one per item', async () => {
    const files = Array.from({ length: 1000 }, (_, index) => ({ name: `f${index}.py`, content: '', colour: 'blue' }));
    const refused = assertError(await post({ language: 'python', files }), 400, 'invalid_request');
    const issues = refused.details?.issues as { path: string; message: string }[];
    assert.equal(issues.length, 8);
    assert.deepEqual(issues[7], { path: 'body/files/7', message: 'must not have additional properties (colour)' });
  });

  test('a 4 MiB body of short unknown keys is refused with one issue naming the first 10 (its time printed, not asserted)', async () => {
    let text = '{"language":"python","source":"x"';
    for (let index = 0; ; index++) {
      const field = `,"${index}":0`;
      if (text.length + field.length + 1 > 4 * 1024 * 1024) break;
      text += field;
    }
    text += '}';
    const parseStarted = performance.now();
    const keys = Object.keys(JSON.parse(text) as object).length;
    const parseMs = performance.now() - parseStarted;
    const started = performance.now();
    const response = await service.app.inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': 'application/json' }, payload: text });
    const answerMs = performance.now() - started;
    const refused = assertError(response, 400, 'invalid_request');
    assert.equal(refused.message, `body must not have additional properties (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, and ${keys - 12} more)`);
    // A figure, not an assertion: timing on a shared machine. Before: 1.5-1.9 s (TypeBox's own search).
    console.log(`# ${keys} keys, ${text.length} bytes: JSON.parse ${parseMs.toFixed(0)} ms, answered in ${answerMs.toFixed(0)} ms`);
  });

  /** A 4 MiB body whose `field` is a list of `item` (JSON text) repeated to the body limit. */
  const fourMiBList = (field: string, item: string) => {
    const opening = `{"language":"python","source":"x","${field}":[${item}`;
    const count = Math.floor((4 * 1024 * 1024 - opening.length - 2) / (item.length + 1)) + 1;
    return { text: `${opening}${`,${item}`.repeat(count - 1)}]}`, count };
  };

  for (const [field, item, before] of [
    ['args', '1', '1.3-1.4 s'],
    ['tests', '{}', '0.6 s'],
  ] as const) {
    test(`a 4 MiB body whose ${field} is a list of ${item} is refused for its length, its items unchecked (its time printed, not asserted)`, async () => {
      const { text, count } = fourMiBList(field, item);
      assert.ok(count > 100_000, `${count} items`);
      const parseStarted = performance.now();
      JSON.parse(text);
      const parseMs = performance.now() - parseStarted;
      const started = performance.now();
      const response = await service.app.inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': 'application/json' }, payload: text });
      const answerMs = performance.now() - started;
      const refused = assertError(response, 400, 'invalid_request');
      assert.equal(refused.message, `body/${field} must not have more than 100000 items`);
      assert.deepEqual(refused.details, { issues: [{ path: `body/${field}`, message: 'must not have more than 100000 items' }] });
      // A figure, not an assertion: timing on a shared machine. Before: ${before}, TypeBox checking every item.
      console.log(`# ${count} ${field} (${item}), ${text.length} bytes: JSON.parse ${parseMs.toFixed(0)} ms, answered in ${answerMs.toFixed(0)} ms (before: ${before})`);
    });
  }

  test("a list within the schema's maxItems still gets the policy's refusal of its count, however long", async () => {
    const tests = assertError(await post({ ...hello, tests: Array.from({ length: 10_000 }, () => ({})) }), 400, 'too_many_tests');
    assert.deepEqual(tests.details, { maximum: 100 });
    assertError(await post({ ...hello, args: Array.from({ length: 100_000 }, () => 'a') }), 400, 'too_many_args');
    // One item past it is the schema's: no maximum the policy may be set to takes it.
    assertError(await post({ ...hello, args: Array.from({ length: 100_001 }, () => 'a') }), 400, 'invalid_request');
    // The batch's list, and one inside a judge program: each is bounded as its own.
    assertError(await post({ jobs: Array.from({ length: 100_001 }, () => ({})) }, '/v1/jobs/batch'), 400, 'invalid_request');
    const checkerFiles = assertError(await post({ ...hello, checker: { language: 'python', files: Array.from({ length: 100_001 }, () => ({})) } }), 400, 'invalid_request');
    assert.equal(checkerFiles.message, 'body/checker/files must not have more than 100000 items');
    // Refused for its length alone: the unknown-field walk does not go through its items either.
    const unknownInItems = assertError(await post({ ...hello, tests: Array.from({ length: 100_001 }, () => ({ stdn: '' })) }), 400, 'invalid_request');
    assert.deepEqual(unknownInItems.details, { issues: [{ path: 'body/tests', message: 'must not have more than 100000 items' }] });
  });
});

describe('clients behind a balancer', () => {
  test('CELLBLOCK_TRUSTED_PROXIES: a trusted peer\'s X-Forwarded-For names the client; anyone else\'s is not believed', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const service = await startService({ logger, config: { trustedProxies: ['10.0.0.0/8'], defaultRequestsPerWindow: 2, rateLimitWindowMs: 60_000 } });
    try {
      const from = (remoteAddress: string, forwardedFor?: string) =>
        service.app.inject({ url: '/v1/runtimes', remoteAddress, headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {} });
      // Two clients through the balancer: a limit each, not one between them.
      assert.equal((await from('10.1.1.1', '198.51.100.1')).statusCode, 200);
      assert.equal((await from('10.1.1.1', '198.51.100.1')).statusCode, 200);
      assertError(await from('10.1.1.1', '198.51.100.1'), 429, 'rate_limited');
      assert.equal((await from('10.1.1.2', '198.51.100.2')).statusCode, 200);
      // A client's own entry to the left of what the balancer appended changes nothing.
      assertError(await from('10.1.1.2', '203.0.113.9, 198.51.100.1'), 429, 'rate_limited');
      // A peer that is not a trusted proxy is itself the client, whatever it forwards for.
      assert.equal((await from('192.0.2.50', '198.51.100.3')).statusCode, 200);
      assert.equal((await from('192.0.2.50', '198.51.100.4')).statusCode, 200);
      assertError(await from('192.0.2.50', '198.51.100.5'), 429, 'rate_limited');
      const addresses = lines.filter((line) => line.msg === 'request answered').map((line) => line.remoteAddress);
      assert.deepEqual(addresses, ['198.51.100.1', '198.51.100.1', '198.51.100.1', '198.51.100.2', '198.51.100.1', '192.0.2.50', '192.0.2.50', '192.0.2.50']);
    } finally {
      await service.close();
    }
  });
});

describe('API access log', () => {
  test('one line per answered request, with its status and time; none on arrival', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const service = await startService({ logger });
    try {
      const ok = await service.app.inject({ method: 'GET', url: '/healthz' });
      assert.equal(ok.statusCode, 200);
      const bad = await service.app.inject({ method: 'POST', url: '/v1/jobs', payload: { language: 'cobol', source: 'x' } });
      assert.equal(bad.statusCode, 400);
      // A live ticket is never written down (one a request did not spend would still be good).
      const plainGet = await service.app.inject({ method: 'GET', url: '/v1/live?ticket=secret-ticket&outputEncoding=utf8' });
      assert.equal(plainGet.statusCode, 426);
      const requestLines = lines.filter((line) => line.url !== undefined || line.req !== undefined);
      assert.deepEqual(
        requestLines.map((line) => [line.msg, line.method, line.url, line.statusCode]),
        [
          ['request answered', 'GET', '/healthz', 200],
          ['request answered', 'POST', '/v1/jobs', 400],
          ['request answered', 'GET', '/v1/live?ticket=[redacted]&outputEncoding=utf8', 426],
        ],
      );
      assert.ok(!JSON.stringify(lines).includes('secret-ticket'));
      for (const line of requestLines) assert.equal(typeof line.responseTimeMs, 'number');
    } finally {
      await service.close();
    }
  });
});

describe('API-only host', () => {
  test('the API loads no native code: it checks jobs as the worker does, without the engine', () => {
    // The API runs the worker's check of a job (checkSubmission) but must start where the native
    // addon was never built (API and workers need not share a host).
    const module = (relative: string) => JSON.stringify(new URL(relative, import.meta.url).pathname);
    // buildApp loads the compat fronts too; the job service is not touched before a request (its
    // close ends the waits held: endWaits, which a stand-in for the service has).
    const script = `const { buildApp } = await import(${module('../../src/api/app.ts')});
      const { loadConfig } = await import(${module('../../src/config.ts')});
      const app = await buildApp({ jobs: { endWaits() {} }, runtimes: [], config: loadConfig({}) });
      await app.ready();
      const maps = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8');
      process.stdout.write(String(maps.includes('cellblock_native')));
      await app.close();`;
    const loaded = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(loaded, 'false');
  });
});
