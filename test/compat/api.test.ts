// The compat fronts inside the real app over real Redis, with no worker: everything that is
// answered before a job runs — request checks, tokens, queued status, batch, fields, languages,
// statuses, Piston's 400/415. (Running jobs: e2e.test.ts.)
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { loggableUrl } from '../../src/api/auth.js';
import { runArgv } from '../../src/executor/argv.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { variantOf } from '../../src/images/variants.js';
import { envStrings, leastMemoryBytes } from '../../src/sandbox/spec.js';
import { MiB } from '../../src/units.js';
import { openLiveSocket } from '../helpers/live-socket.js';
import { makeZip } from '../helpers/zip.js';
import { listen, startService, type ServiceHarness } from '../service/fixtures.js';

describe('compat fronts before a job runs', () => {
  let service: ServiceHarness;
  const inject = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown, headers?: Record<string, string>) =>
    service.app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }), ...(headers ? { headers } : {}) });

  /** Where Piston's sockets are reached: the app listening on a loopback port. */
  let wsBase: string;

  before(async () => {
    service = await startService({ runtimes: loadRuntimes(), config: { maxWaitMs: 300, maxTests: 3, maxJobOutputBytes: 8 * MiB } });
    wsBase = (await listen(service)).replace(/^http/, 'ws');
  });
  after(() => service.close());

  test('Judge0 lists its statuses and our languages under the well-known ids', async () => {
    const statuses = (await inject('GET', '/statuses')).json() as { id: number; description: string }[];
    assert.equal(statuses.length, 14);
    assert.deepEqual(statuses[10], { id: 11, description: 'Runtime Error (NZEC)' });
    const languages = (await inject('GET', '/languages')).json() as { id: number; name: string }[];
    const ids = new Map(languages.map((language) => [language.id, language.name]));
    for (const id of [46, 50, 54, 62, 63, 71]) assert.ok(ids.has(id), `language ${id} listed: ${JSON.stringify(languages)}`);
    // Judge0 1.13 lists its older GCCs' ids too, which clients send (the official Python client's
    // C++ is 52): the same runtime, under the same name.
    for (const [older, id] of [[48, 50], [49, 50], [52, 54], [53, 54]] as const) assert.equal(ids.get(older), ids.get(id), `language ${older} listed as ${id}`);
    assert.equal(languages.filter((language) => language.name === ids.get(54)).length, 3);
    assert.match(ids.get(71)!, /^Python \(3\.\d+\.\d+\)$/);
    const python = await inject('GET', '/languages/71');
    assert.equal(python.statusCode, 200);
    assert.deepEqual(Object.keys(python.json()), ['id', 'name', 'is_archived', 'source_file', 'compile_cmd', 'run_cmd']);
    assert.equal(python.json().source_file, 'script.py', "Judge0's file name");
    assert.equal(python.json().run_cmd, '/usr/bin/python3 script.py', 'the command as it runs, placeholders expanded');
    assert.equal(python.json().compile_cmd, null);
    const c = (await inject('GET', '/languages/50')).json() as { compile_cmd: string };
    assert.match(c.compile_cmd, /^\/usr\/bin\/gcc .* %s .*main\.c/, "compiler options go where Judge0's compile_cmd has %s");
    // The stages' limits as a submission with the defaults gets them (Java's 512 MiB run, 1 GiB compile).
    const java = (await inject('GET', '/languages/62')).json() as { compile_cmd: string; run_cmd: string };
    assert.ok(java.compile_cmd.split(' ').includes('-J-Xmx768m') && java.run_cmd.split(' ').includes('-Xmx384m'), JSON.stringify(java));
    // Every language compiles, or runs, the file under Judge0's name (a compile takes it by its suffix).
    for (const { id } of languages) {
      const language = (await inject('GET', `/languages/${id}`)).json() as { source_file: string; compile_cmd: string | null; run_cmd: string };
      assert.ok((language.compile_cmd ?? language.run_cmd).split(' ').includes(language.source_file), JSON.stringify(language));
    }
    assert.equal((await inject('GET', '/languages/92')).json().id, 92, 'Python 3.11 id of newer Judge0 is served too');
    assert.deepEqual((await inject('GET', '/languages/9999')).json(), { status: 404, error: 'Not Found' });
  });

  test('Judge0 about, config_info (the limits every language accepts) and workers (none here: 503)', async () => {
    const about = await inject('GET', '/about');
    assert.equal(about.statusCode, 200);
    assert.equal(about.json().version, '1.13.1');
    const version = await inject('GET', '/version');
    assert.deepEqual([version.statusCode, version.headers['content-type'], version.body], [200, 'text/plain; charset=utf-8', '1.13.1']);
    const config = (await inject('GET', '/config_info')).json() as Record<string, unknown>;
    const runtimes = loadRuntimes();
    const least = (pick: (runtime: (typeof runtimes)[number]) => number) => Math.min(...runtimes.map(pick));
    assert.equal(config.cpu_time_limit, least((r) => r.defaultLimits.cpuTimeMs) / 1000);
    assert.equal(config.max_cpu_time_limit, least((r) => r.maxLimits.cpuTimeMs) / 1000);
    assert.equal(config.max_memory_limit, least((r) => r.maxLimits.memoryBytes) / 1024);
    assert.equal(config.max_max_processes_and_or_threads, least((r) => r.maxLimits.pids));
    assert.deepEqual([config.max_number_of_runs, config.max_queue_size, config.enable_wait_result, config.enable_compiler_options, config.enable_network], [3, 1000, true, true, false]);
    assert.deepEqual(config.allowed_languages_for_compile_options, [], 'every compiled runtime of ours takes compiler options');
    // Judge0's 10240 KB, or less: what one request's body may carry (CELLBLOCK_BODY_LIMIT_BYTES, 4 MiB here).
    assert.deepEqual([config.enable_additional_files, config.max_extract_size], [true, 4096]);
    // Every field the official Python client (judge0-python's Config model) requires.
    const required = ['allow_enable_network', 'allow_enable_per_process_and_thread_memory_limit', 'allow_enable_per_process_and_thread_time_limit',
      'allowed_languages_for_compile_options', 'callbacks_max_tries', 'callbacks_timeout', 'cpu_extra_time', 'cpu_time_limit', 'enable_additional_files',
      'enable_batched_submissions', 'enable_callbacks', 'enable_command_line_arguments', 'enable_compiler_options', 'enable_network',
      'enable_per_process_and_thread_memory_limit', 'enable_per_process_and_thread_time_limit', 'enable_submission_delete', 'enable_wait_result',
      'maintenance_mode', 'max_cpu_extra_time', 'max_cpu_time_limit', 'max_extract_size', 'max_file_size', 'max_max_file_size',
      'max_max_processes_and_or_threads', 'max_memory_limit', 'max_number_of_runs', 'max_processes_and_or_threads', 'max_queue_size', 'max_stack_limit',
      'max_submission_batch_size', 'max_wall_time_limit', 'memory_limit', 'number_of_runs', 'redirect_stderr_to_stdout', 'stack_limit',
      'submission_cache_duration', 'use_docs_as_homepage'];
    assert.deepEqual(required.filter((key) => !(key in config)), []);
    for (const [key, value] of Object.entries(config)) {
      assert.ok(['number', 'boolean'].includes(typeof value) || Array.isArray(value), `${key}: ${JSON.stringify(value)}`);
    }
    assert.equal(config.max_max_file_size, least((r) => r.maxLimits.fileSizeBytes) / 1024);
    // Judge0's default, what a submission without max_file_size has for its files and its stdout
    // alike; not the runtimes' default file size (16 MiB, beside an output of 1 MiB).
    assert.equal(config.max_file_size, 1024);
    // A client's largest limits per config_info are accepted for every language it lists (but for
    // max_file_size, which also bounds a run's output: here that would pass this server's
    // CELLBLOCK_MAX_JOB_OUTPUT_BYTES, a bound Judge0 has no counterpart of).
    for (const languageId of [46, 50, 54, 62, 63, 71]) {
      const created = await inject('POST', '/submissions', {
        source_code: 'x', language_id: languageId, cpu_time_limit: config.max_cpu_time_limit, wall_time_limit: config.max_wall_time_limit,
        memory_limit: config.max_memory_limit, stack_limit: config.max_stack_limit, max_processes_and_or_threads: config.max_max_processes_and_or_threads,
        number_of_runs: config.max_number_of_runs,
      });
      assert.equal(created.statusCode, 201, `language ${languageId}: ${created.body}`);
    }
    const workers = await inject('GET', '/workers');
    assert.equal(workers.statusCode, 503);
    assert.ok(Number(workers.headers['retry-after']) > 0);
    const waiting = (await service.jobs.counts()).waiting;
    assert.ok(waiting >= 6, 'the submissions above wait, with no worker');
    assert.deepEqual(workers.json(), [{ queue: 'cellblock', size: waiting, total: 0, available: 0, idle: 0, working: 0, paused: 0, failed: 0 }]);
  });

  test('Judge0 queues a submission and shows it In Queue, with the fields asked for', async () => {
    const created = await inject('POST', '/submissions', { source_code: 'print("hi")', language_id: 71 });
    assert.equal(created.statusCode, 201);
    const { token } = created.json() as { token: string };
    assert.deepEqual(Object.keys(created.json()), ['token']);
    const shown = await inject('GET', `/submissions/${token}`);
    assert.equal(shown.statusCode, 200);
    assert.deepEqual(shown.json(), {
      token,
      time: null,
      memory: null,
      stdout: null,
      stderr: null,
      compile_output: null,
      message: null,
      status: { id: 1, description: 'In Queue' },
    });
    assert.deepEqual((await inject('GET', `/submissions/${token}?fields=status_id,language_id`)).json(), { status_id: 1, language_id: 71 });
    const bad = await inject('GET', `/submissions/${token}?fields=stdout,bogus`);
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(bad.json(), { error: 'invalid fields: [bogus]' });
    assert.deepEqual((await inject('GET', '/submissions/not-a-token')).json(), { status: 404, error: 'Not Found' });
  });

  test('Judge0 answers every request attribute with what was submitted, from the stored job', async () => {
    const created = await inject('POST', '/submissions?base64_encoded=true', {
      source_code: Buffer.from('print(input())').toString('base64'),
      language_id: 92,
      stdin: Buffer.from('Judge0').toString('base64'),
      expected_output: Buffer.from([0xfe, 0x0a]).toString('base64'),
      cpu_time_limit: '1.5',
      memory_limit: 65536,
      command_line_arguments: '--flag x',
    });
    assert.equal(created.statusCode, 201, created.body);
    const { token } = created.json() as { token: string };
    const all = await inject('GET', `/submissions/${token}?fields=*&base64_encoded=true`);
    assert.equal(all.statusCode, 200);
    const body = all.json() as Record<string, unknown>;
    const python = loadRuntimes().find((runtime) => runtime.id === 'python')!;
    assert.deepEqual(
      {
        source_code: body.source_code,
        language_id: body.language_id,
        language: body.language,
        stdin: body.stdin,
        expected_output: body.expected_output,
        cpu_time_limit: body.cpu_time_limit,
        wall_time_limit: body.wall_time_limit,
        memory_limit: body.memory_limit,
        number_of_runs: body.number_of_runs,
        command_line_arguments: body.command_line_arguments,
        enable_network: body.enable_network,
        status: body.status,
      },
      {
        source_code: `${Buffer.from('print(input())').toString('base64')}\n`,
        language_id: 92,
        language: { id: 92, name: `Python (${python.version})` },
        stdin: `${Buffer.from('Judge0').toString('base64')}\n`,
        expected_output: '/go=\n',
        cpu_time_limit: '1.5',
        wall_time_limit: `${python.defaultLimits.wallTimeMs / 1000}.0`,
        memory_limit: 65536,
        number_of_runs: 1,
        command_line_arguments: '--flag x',
        enable_network: false,
        status: { id: 1, description: 'In Queue' },
      },
    );
    const asText = await inject('GET', `/submissions/${token}?fields=expected_output`);
    assert.equal(asText.statusCode, 400, 'expected output that is not UTF-8 needs base64_encoded=true, as in Judge0');
  });

  test('Judge0 number_of_runs queues one test per run, stopping at the first that is not Accepted', async () => {
    const created = await inject('POST', '/submissions', { source_code: 'print(1)', language_id: 71, number_of_runs: 3 });
    assert.equal(created.statusCode, 201, created.body);
    const { request } = (await service.jobs.get((created.json() as { token: string }).token))!;
    assert.deepEqual([request?.tests?.length, request?.stopOnFailure], [3, true]);
  });

  test('Judge0 takes a form-encoded submission, as Rails does', async () => {
    const created = await inject('POST', '/submissions?fields=token', 'source_code=print(%22hi%22)&language_id=71&stdin=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(created.statusCode, 201, created.body);
    const { token } = created.json() as { token: string };
    assert.equal((await inject('GET', `/submissions/${token}?fields=status_id`)).json().status_id, 1);
    const refused = await inject('POST', '/submissions', 'language_id=71', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(refused.statusCode, 422);
    assert.deepEqual(refused.json(), { source_code: ["can't be blank"] });
  });

  test('Judge0 wait=true answers with the current status when the job does not finish in time', async () => {
    const created = await inject('POST', '/submissions?wait=true&fields=status_id,token', { source_code: 'print(1)', language_id: 71 });
    assert.equal(created.statusCode, 201);
    assert.equal(created.json().status_id, 1);
  });

  test('Judge0 refuses bad submissions with Rails\' 422 and bad batches with 400', async () => {
    const refused = await inject('POST', '/submissions', { source_code: 'x', language_id: 71, memory_limit: 100, enable_network: true });
    assert.equal(refused.statusCode, 422);
    assert.deepEqual(refused.json(), {
      memory_limit: ['must be greater than or equal to 2048'],
      enable_network: ['enabling network is not allowed'],
    });
    assert.equal((await inject('POST', '/submissions/batch', { submissions: [] })).statusCode, 400);
    const tooMany = await inject('POST', '/submissions/batch', { submissions: Array.from({ length: 21 }, () => ({})) });
    assert.deepEqual(tooMany.json(), { error: 'number of submissions in a batch should be less than or equal to 20' });
    assert.equal((await inject('GET', '/submissions/batch')).statusCode, 400);
    assert.equal((await inject('GET', '/submissions')).statusCode, 403);
  });

  test('Judge0 batch: valid ones get tokens, invalid ones their errors, in order', async () => {
    const created = await inject('POST', '/submissions/batch', {
      submissions: [{ source_code: 'print(1)', language_id: 71 }, { source_code: 'x' }, { source_code: 'echo 1', language_id: '46' }],
    });
    assert.equal(created.statusCode, 201);
    const body = created.json() as ({ token: string } | Record<string, string[]>)[];
    // Judge0's tokens are UUIDs (SecureRandom.uuid): clients keep them in uuid columns.
    assert.match(String(body[0]!.token), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal((await inject('GET', `/v1/jobs/${String(body[0]!.token)}`)).json().status, 'queued', 'the same job under /v1');
    assert.match((await inject('POST', '/v1/jobs', { language: 'python', source: 'print(1)' })).json().id, /^[A-Za-z0-9_-]{21}$/, "/v1's ids stay nanoids");
    assert.deepEqual(body[1], { language_id: ["can't be blank"] });
    const tokens = [body[0]!.token, 'missing', body[2]!.token].join(',');
    const shown = await inject('GET', `/submissions/batch?tokens=${tokens}&fields=token,status_id`);
    assert.deepEqual(shown.json(), {
      submissions: [{ token: body[0]!.token, status_id: 1 }, null, { token: body[2]!.token, status_id: 1 }],
    });
    // As Ruby splits them: an empty token keeps its place (null), trailing commas are dropped.
    const gaps = await inject('GET', `/submissions/batch?tokens=,${body[0]!.token},,${body[2]!.token},,&fields=token`);
    assert.deepEqual(gaps.json(), { submissions: [null, { token: body[0]!.token }, null, { token: body[2]!.token }] });
    const allBad = await inject('POST', '/submissions/batch', { submissions: [{ language_id: 71 }] });
    assert.equal(allBad.statusCode, 422);
  });

  test('Judge0 additional_files: two entries whose names are one name here and two files to unzip are a 422 naming them', async () => {
    const named = (bytes: string) => ({ name: '', nameHex: Buffer.from(bytes, 'latin1').toString('hex'), content: bytes });
    const zip = makeZip([named('a\xff.txt'), named('a\xfe.txt')]).toString('base64');
    const waiting = async () => (await service.jobs.counts()).waiting;
    const before = await waiting();
    const refused = await inject('POST', '/submissions', { source_code: 'print(1)', language_id: 71, additional_files: zip });
    assert.equal(refused.statusCode, 422, refused.body);
    assert.match((refused.json() as { additional_files: string[] }).additional_files[0]!, /^holds two entries that would both be "a\uFFFD\.txt": their names' bytes, "a\\xff\.txt" and "a\\xfe\.txt", differ/);
    assert.equal(await waiting(), before, 'nothing queued');
  });

  test('Judge0 additional_files: an entry whose name the worker would refuse is a 422 under additional_files, not base', async () => {
    const optionLike = makeZip([{ name: '-o.py', content: 'x = 1\n' }]).toString('base64');
    const refused = await inject('POST', '/submissions', { source_code: 'print(1)', language_id: 71, additional_files: optionLike });
    assert.deepEqual([refused.statusCode, refused.json()], [422, { additional_files: ['file name "-o.py" must not start with "-" or "@": the compiler would read it as an option'] }]);
    const longPart = makeZip([{ name: `${'p'.repeat(256)}.txt`, content: '' }]).toString('base64');
    const long = await inject('POST', '/submissions', { source_code: 'print(1)', language_id: 71, additional_files: longPart });
    assert.equal(long.statusCode, 422, long.body);
    assert.match((long.json() as { additional_files: string[] }).additional_files[0]!, /has a part longer than 255 bytes/);
    // A name that needs the source file to be a directory.
    const underSource = makeZip([{ name: 'script.py/x', content: '' }]).toString('base64');
    const conflict = await inject('POST', '/submissions', { source_code: 'print(1)', language_id: 71, additional_files: underSource });
    assert.equal(conflict.statusCode, 422, conflict.body);
    assert.deepEqual(Object.keys(conflict.json() as object), ['additional_files'], conflict.body);
  });

  test("Judge0 additional_files: one request's archives unpack to at most its body limit, all its submissions together", async () => {
    // Deflated zeros: a few KB of request that would be megabytes of queued job.
    const zeros = (mib: number) => makeZip([{ name: 'zeros.bin', content: '\0'.repeat(mib * MiB) }]).toString('base64');
    const judge0 = { source_code: 'print(1)', language_id: 71 };
    const whole = await inject('POST', '/submissions', { ...judge0, additional_files: zeros(5) });
    assert.deepEqual([whole.statusCode, whole.json()], [422, { additional_files: [`unpacks to more than ${4 * MiB} bytes`] }]);
    const batch = await inject('POST', '/submissions/batch', { submissions: [{ ...judge0, additional_files: zeros(3) }, { ...judge0, additional_files: zeros(3) }] });
    assert.equal(batch.statusCode, 201);
    const [first, second] = batch.json() as [{ token: string }, Record<string, string[]>];
    assert.equal(typeof first.token, 'string');
    assert.deepEqual(second, { additional_files: [`unpacks to more than ${MiB} bytes`] }, 'what the first left of the budget');
    // A refused submission uses none of it: here its language.
    const refusedFirst = await inject('POST', '/submissions/batch', {
      submissions: [{ ...judge0, language_id: 424242, additional_files: zeros(3) }, { ...judge0, additional_files: zeros(3) }],
    });
    const [unknown, valid] = refusedFirst.json() as [Record<string, string[]>, { token: string }];
    assert.deepEqual(unknown, { language_id: ["language with id 424242 doesn't exist"] });
    assert.equal(typeof valid.token, 'string', JSON.stringify(valid));
    // number_of_runs stores the stdin once per run: 3 runs of a 2.5 MiB stdin would add 2 x 2.5 MiB (base64: 6.7 MiB).
    const stdin = 'x'.repeat(2.5 * MiB);
    const repeated = await inject('POST', '/submissions', { ...judge0, stdin, number_of_runs: 3 });
    assert.equal(repeated.statusCode, 422, repeated.body);
    assert.match((repeated.json() as { base: string[] }).base[0]!, /^3 runs store the stdin and expected_output once each, \d+ bytes beyond the first, more than the 4194304 bytes/);
    const once = await inject('POST', '/submissions', { ...judge0, stdin, number_of_runs: 1 });
    assert.equal(once.statusCode, 201, once.body);
    // An expected output is stored as it travels: text where it is UTF-8, base64 (a third more)
    // where it is not. 1.75 MiB repeated twice: 3.5 MiB as text, 4.67 MiB as base64.
    const expected = (byte: number, runs: number) =>
      inject('POST', '/submissions?base64_encoded=true', {
        source_code: Buffer.from('print(1)').toString('base64'),
        language_id: 71,
        expected_output: Buffer.alloc(1.75 * MiB, byte).toString('base64'),
        number_of_runs: runs,
      });
    assert.equal((await expected(0x78, 3)).statusCode, 201, 'UTF-8: stored as text');
    const bytes = await expected(0xff, 3);
    assert.equal(bytes.statusCode, 422, bytes.body);
    assert.match((bytes.json() as { base: string[] }).base[0]!, /^3 runs store the stdin and expected_output once each, 4893360 bytes beyond the first/);
    assert.equal((await expected(0xff, 2)).statusCode, 201);
    // Text is stored as JSON escapes it: a control byte (UTF-8, so text) takes six bytes, \u0001.
    // 1.75 MiB of them repeated twice: 21 MiB stored, though the base64 body carried 2.3 MiB.
    const control = await expected(0x01, 3);
    assert.equal(control.statusCode, 422, control.body);
    assert.match((control.json() as { base: string[] }).base[0]!, /^3 runs store the stdin and expected_output once each, 22020096 bytes beyond the first/);
  });

  test('Piston lists runtimes and refuses bad requests with its messages and codes', async () => {
    const runtimes = (await inject('GET', '/api/v2/runtimes')).json() as { language: string; version: string; aliases: string[] }[];
    assert.ok(runtimes.some((runtime) => runtime.language === 'python' && runtime.aliases.includes('py')));
    const unknown = await inject('POST', '/api/v2/execute', { language: 'cobol', version: '*', files: [{ content: '' }] });
    assert.equal(unknown.statusCode, 400);
    assert.deepEqual(unknown.json(), { message: 'cobol-* runtime is unknown' });
    const text = await inject('POST', '/api/v2/execute', { language: 'python', version: '*', files: [{ content: 'print(1)', encoding: 'text' }] });
    assert.deepEqual([text.statusCode, text.json()], [400, { message: 'files must include at least one utf8 encoded file' }], 'an encoding Piston does not know is no utf8 file');
    assert.ok(runtimes.some((runtime) => runtime.language === 'javascript' && runtime.aliases.includes('node-javascript')));
    const xml = await inject('POST', '/api/v2/execute', '<x/>', { 'content-type': 'application/xml' });
    assert.equal(xml.statusCode, 415);
    assert.deepEqual(xml.json(), { message: 'requests must be of type application/json' });
    const broken = await inject('POST', '/api/v2/execute', '{"language":', { 'content-type': 'application/json' });
    assert.equal(broken.statusCode, 400);
    assert.ok(typeof broken.json().message === 'string');
  });

  test("Piston's routes are served under /api/v2/piston too, the public instance's path that its clients hard-code", async () => {
    for (const route of ['runtimes', 'packages']) {
      const alias = await inject('GET', `/api/v2/piston/${route}`);
      assert.equal(alias.statusCode, 200, route);
      assert.deepEqual(alias.json(), (await inject('GET', `/api/v2/${route}`)).json(), route);
    }
    const unknown = await inject('POST', '/api/v2/piston/execute', { language: 'cobol', version: '*', files: [{ content: '' }] });
    assert.deepEqual([unknown.statusCode, unknown.json()], [400, { message: 'cobol-* runtime is unknown' }]);
    const xml = await inject('POST', '/api/v2/piston/execute', '<x/>', { 'content-type': 'application/xml' });
    assert.deepEqual([xml.statusCode, xml.json()], [415, { message: 'requests must be of type application/json' }]);
    // A valid one is queued and waited for as through /api/v2 (no worker here: the wait's 503).
    const queued = await inject('POST', '/api/v2/piston/execute', { language: 'python', version: '3', files: [{ content: 'print(1)' }] });
    assert.equal(queued.statusCode, 503, queued.body);
    assert.match(queued.json().message, /^job \S+ did not finish within 300 ms/);
    const plain = await inject('GET', '/api/v2/piston/connect');
    assert.deepEqual([plain.statusCode, plain.json()], [426, { message: '/api/v2/piston/connect is a WebSocket: connect with an Upgrade: websocket request' }]);
    const socket = await openLiveSocket(`${wsBase}/api/v2/piston/connect`);
    socket.send({ type: 'data', stream: 'stdin', data: 'x' });
    assert.deepEqual(await socket.closed, { code: 4003, reason: 'Not yet initialized' }, "Piston's socket, closed as Piston closes it");
    // Listed in the OpenAPI document as the routes they stand for, behind the same keys.
    const paths = (await inject('GET', '/docs/json')).json().paths as Record<string, Record<string, unknown>>;
    for (const [route, method] of [['runtimes', 'get'], ['packages', 'get'], ['execute', 'post'], ['connect', 'get']] as const) {
      assert.ok(paths[`/api/v2/piston/${route}`]?.[method], `/api/v2/piston/${route} is in the document`);
      assert.deepEqual(paths[`/api/v2/piston/${route}`]![method], paths[`/api/v2/${route}`]![method], route);
    }
  });

  test('one version rule in every front: a release line is found by a release in it, not by a number that is a text prefix of it', async () => {
    // images/runtimes/javascript.json names the 18.20 line (its image has whichever 18.20.x).
    const v1 = (version: string) => inject('POST', '/v1/jobs', { language: 'javascript', version, source: 'console.log(1)' });
    const accepted = await v1('18.20.4');
    assert.equal(accepted.statusCode, 202, accepted.body);
    await inject('DELETE', `/v1/jobs/${(accepted.json() as { id: string }).id}`);
    for (const version of ['18.2', '18.21.0']) {
      const refused = await v1(version);
      assert.deepEqual([refused.statusCode, (refused.json() as { error: { code: string } }).error.code], [400, 'unknown_version'], version);
    }
    const piston = (version: string) => inject('POST', '/api/v2/execute', { language: 'js', version, files: [{ content: 'console.log(1)' }] });
    assert.deepEqual((await piston('18.2')).json(), { message: 'js-18.2 runtime is unknown' });
    // Found and queued (no worker here: the wait's 503, its job cancelled).
    assert.match((await piston('18.20.4')).json().message, /^job \S+ did not finish within 300 ms/);
    // Judge0 selects by language id, not by version: 63 is the same runtime.
    assert.match((await inject('GET', '/languages/63')).json().name, /^JavaScript \(.*18\.20\)$/);
  });

  test('every front refuses, with nothing queued, a job a worker would refuse or the server\'s maxima forbid', async () => {
    const waiting = async () => (await service.jobs.counts()).waiting;
    const before = await waiting();
    const piston = { language: 'python', version: '3', files: [{ content: 'print(1)' }] };
    const refusedByPiston = async (body: object, message: string) => {
      const response = await inject('POST', '/api/v2/execute', { ...piston, ...body });
      assert.equal(response.statusCode, 400, response.body);
      assert.deepEqual(response.json(), { message });
    };
    // The server's maxima, said in Piston's fields (not /v1's words).
    await refusedByPiston({ args: Array.from({ length: 129 }, () => 'a') }, 'args: 129 arguments; at most 128');
    await refusedByPiston({ args: ['a'.repeat(4097)] }, 'args[0] has more than 4096 characters');
    await refusedByPiston({ files: Array.from({ length: 65 }, (_, i) => ({ name: `f${i}.py`, content: '' })) }, 'files: 65 files; at most 64');
    await refusedByPiston({ args: ['\0'] }, 'args[0] must not contain NUL characters');
    await refusedByPiston({ run_memory_limit: 1.5 }, 'run_memory_limit must be a whole number of bytes');
    // What the worker's own check refuses is said with Piston's field names, not /v1's limits.memoryBytes.
    const startingMemory = 'must be at least 1048576 (1 MiB), what the kernel may charge to a run before its program starts';
    await refusedByPiston({ run_memory_limit: 1000 }, `run_memory_limit ${startingMemory}`);
    await refusedByPiston({ language: 'c', version: '*', compile_memory_limit: 1000 }, `compile_memory_limit ${startingMemory}`);
    const tooSmallForExec = await inject('POST', '/api/v2/execute', { ...piston, language: 'java', version: '*', run_memory_limit: 1048576 });
    // Java through Piston runs by its `piston` variant: that argv (the source launcher on the entry
    // file) is the one checked, not the runtime's own (`java ... Main`).
    const java = loadRuntimes().find((runtime) => runtime.id === 'java')!;
    const limits = { ...java.defaultLimits, memoryBytes: 1048576 };
    const leastForLauncher = leastMemoryBytes(runArgv(variantOf(java, 'piston')!.run.argv, [java.sourceFile], [], limits), envStrings(java.env));
    assert.notEqual(leastForLauncher, leastMemoryBytes(runArgv(java.run.argv, [java.sourceFile], [], limits), envStrings(java.env)));
    assert.match(tooSmallForExec.json().message, new RegExp(`^run_memory_limit 1048576 is below ${leastForLauncher}: the program's arguments`));
    const socket = await openLiveSocket(`${wsBase}/api/v2/connect`);
    socket.send({ type: 'init', ...piston, language: 'c', version: '*', compile_memory_limit: 1048576 });
    assert.match((await socket.next((message) => message.type === 'error')).message, /^compile_memory_limit 1048576 is below \d+: /);
    assert.equal((await socket.closed).code, 4002);
    const manyArgs = await openLiveSocket(`${wsBase}/api/v2/connect`);
    manyArgs.send({ type: 'init', ...piston, args: Array.from({ length: 129 }, () => 'a') });
    assert.equal((await manyArgs.next((message) => message.type === 'error')).message, 'args: 129 arguments; at most 128');
    assert.equal((await manyArgs.closed).code, 4002);

    const judge0 = { source_code: 'print(1)', language_id: 71 };
    // The server's maxima, under the attribute they are about and in Judge0's words.
    const overTests = await inject('POST', '/submissions', { ...judge0, number_of_runs: 4 });
    assert.equal(overTests.statusCode, 422);
    // CELLBLOCK_MAX_TESTS (3) below Judge0's 20: its bound, in Rails' words as Judge0's own (config_info's max_number_of_runs).
    assert.deepEqual(overTests.json(), { number_of_runs: ['must be less than or equal to 3'] });
    const words = (n: number) => Array.from({ length: n }, () => 'a').join(' ');
    const overArgs = await inject('POST', '/submissions', { ...judge0, command_line_arguments: words(129) });
    assert.deepEqual([overArgs.statusCode, overArgs.json()], [422, { command_line_arguments: ['129 arguments; at most 128'] }]);
    const overOptions = await inject('POST', '/submissions', { source_code: 'int main(){}', language_id: 50, compiler_options: words(129) });
    assert.deepEqual([overOptions.statusCode, overOptions.json()], [422, { compiler_options: ['129 options; at most 128'] }]);
    // 64 entries in the zip, and the source file: one file too many.
    const zip = makeZip(Array.from({ length: 64 }, (_, i) => ({ name: `f${i}.txt`, content: '' }))).toString('base64');
    const overFiles = await inject('POST', '/submissions', { ...judge0, additional_files: zip });
    assert.deepEqual([overFiles.statusCode, overFiles.json()], [422, { additional_files: ['65 files with the source file; at most 64'] }]);
    // 65 entries: refused as the zip is read, before its other entries, and said the same way.
    const zip65 = makeZip(Array.from({ length: 65 }, (_, i) => ({ name: `f${i}.txt`, content: '' }))).toString('base64');
    const overEntries = await inject('POST', '/submissions', { ...judge0, additional_files: zip65 });
    assert.deepEqual([overEntries.statusCode, overEntries.json()], [422, { additional_files: ['65 or more files with the source file; at most 64'] }]);
    // Judge0's max_file_size bounds a run's output too: 3 runs of up to 4 MiB could store 12 MiB.
    const overOutput = await inject('POST', '/submissions', { ...judge0, number_of_runs: 3, max_file_size: 4096 });
    assert.deepEqual([overOutput.statusCode, overOutput.json()], [
      422,
      { base: [`3 runs of up to ${4 * MiB} bytes could store ${12 * MiB} bytes of output; at most ${8 * MiB} per job (lower max_file_size or send fewer runs (number_of_runs))`] },
    ]);
    // One run (an expected_output makes it a test): no fewer runs to send.
    const oneRun = await inject('POST', '/submissions', { ...judge0, expected_output: '1', max_file_size: 9000 });
    assert.deepEqual([oneRun.statusCode, oneRun.json()], [
      422,
      { base: [`1 run of up to ${9000 * 1024} bytes could store ${9000 * 1024} bytes of output; at most ${8 * MiB} per job (lower max_file_size)`] },
    ]);
    const zeroPids = await inject('POST', '/submissions', { ...judge0, max_processes_and_or_threads: 0.5 });
    assert.deepEqual([zeroPids.statusCode, zeroPids.json()], [422, { max_processes_and_or_threads: ['must be greater than 0'] }]);
    const batch = await inject('POST', '/submissions/batch', { submissions: [{ ...judge0, number_of_runs: 4 }, judge0] });
    assert.equal(batch.statusCode, 201);
    const [refused, accepted] = batch.json() as [Record<string, string[]>, { token: string }];
    assert.deepEqual(refused, { number_of_runs: ['must be less than or equal to 3'] });
    assert.equal(typeof accepted.token, 'string');
    assert.equal(await waiting(), before + 1, 'only the valid one of the batch was queued');

    // A CPU time limit that rounds to no milliseconds was queued as none and then failed every read.
    const tiny = await inject('POST', '/submissions', { ...judge0, cpu_time_limit: 0.0004 });
    assert.equal(tiny.statusCode, 201, tiny.body);
    const shown = await inject('GET', `/submissions/${(tiny.json() as { token: string }).token}?fields=cpu_time_limit,status_id`);
    assert.equal(shown.statusCode, 200, shown.body);
    assert.deepEqual(shown.json(), { cpu_time_limit: '0.001', status_id: 1 });
  });

  test('Piston execute that cannot finish within the wait (no worker) is a 503 with Retry-After, its job cancelled', async () => {
    const response = await inject('POST', '/api/v2/execute', { language: 'python', version: '3', files: [{ content: 'print(1)' }] });
    assert.equal(response.statusCode, 503);
    assert.ok(Number(response.headers['retry-after']) > 0);
    const message = response.json().message as string;
    assert.match(message, /^job (\S+) did not finish within 300 ms \(CELLBLOCK_MAX_WAIT_MS\) and was cancelled; retry later$/);
    const id = /^job (\S+)/.exec(message)![1]!;
    assert.equal((await inject('GET', `/v1/jobs/${id}`)).json().status, 'cancelled');
  });
});

describe('compat fronts with API keys', () => {
  let service: ServiceHarness;
  const submission = { source_code: 'print(1)', language_id: 71 };
  /** Every line the API logs, at every level: no key may be among them. */
  const logLines: Record<string, unknown>[] = [];

  before(async () => {
    const logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
    service = await startService({
      runtimes: loadRuntimes(),
      config: { apiKeys: [{ key: 'judge0-key', requestsPerWindow: 100 }, { key: 'piston-key-of-3', requestsPerWindow: 3 }] },
      logger,
    });
  });
  after(() => service.close());

  test('Judge0 routes take the key from X-Auth-Token, as Judge0 clients send it, besides Bearer and X-API-Key', async () => {
    const post = (headers: Record<string, string>) => service.app.inject({ method: 'POST', url: '/submissions', payload: submission, headers });
    const missing = await post({});
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.json().error, 'this server needs an API key (Authorization: Bearer KEY, X-API-Key, X-Auth-Token or X-RapidAPI-Key)');
    assert.equal((await post({ 'x-auth-token': 'wrong' })).statusCode, 401);
    assert.equal((await post({ 'x-auth-token': 'judge0-key' })).statusCode, 201);
    assert.equal((await post({ authorization: 'Bearer judge0-key' })).statusCode, 201);
    assert.equal((await post({ 'x-api-key': 'judge0-key' })).statusCode, 201);
    const languages = await service.app.inject({ method: 'GET', url: '/languages', headers: { 'x-auth-token': 'judge0-key' } });
    assert.equal(languages.statusCode, 200);
  });

  test('Judge0 routes take X-Auth-Token as a query parameter too, as Judge0 does; /v1 does not', async () => {
    const query = await service.app.inject({ method: 'POST', url: '/submissions?X-Auth-Token=judge0-key', payload: submission });
    assert.equal(query.statusCode, 201, query.body);
    assert.equal((await service.app.inject({ method: 'GET', url: '/languages?X-Auth-Token=wrong' })).statusCode, 401);
    assert.equal((await service.app.inject({ method: 'GET', url: '/v1/runtimes?X-Auth-Token=judge0-key' })).statusCode, 401);
    // Never written down: the access log hides it as it hides a live ticket.
    assert.equal(loggableUrl('/submissions?wait=true&X-Auth-Token=judge0-key&fields=*'), '/submissions?wait=true&X-Auth-Token=[redacted]&fields=*');
    // However its name is spelled: the query parser decodes it before the key is read.
    assert.equal(loggableUrl('/languages?x%2Dauth%2Dtoken=judge0-key'), '/languages?x%2Dauth%2Dtoken=[redacted]');
    assert.equal(loggableUrl('/languages#X-Auth-Token=judge0-key'), '/languages#X-Auth-Token=[redacted]', 'the router reads a query after #');
    assert.equal(loggableUrl('/v1/live?ticket=ab#cd&outputEncoding=utf8'), '/v1/live?ticket=[redacted]&outputEncoding=utf8', 'a value runs to the next &');
    assert.equal(loggableUrl('/v1/jobs/abc?wait=true&x=a=b'), '/v1/jobs/abc?wait=true&x=a=b', 'nothing else changes');
    const long = `/x?${'?'.repeat(20_000)}`;
    const started = performance.now();
    assert.equal(loggableUrl(long), long);
    assert.ok(performance.now() - started < 100, 'linear in the URL');
    assert.equal((await service.app.inject({ method: 'GET', url: '/languages?X%2DAuth%2DToken=judge0-key' })).statusCode, 200);
  });

  test('Judge0 routes take the key from X-RapidAPI-Key too, as clients of the hosted Judge0 send it; a wrong one is the same 401', async () => {
    // A client written for RapidAPI's Judge0, its base URL changed: the key and host headers it sends.
    const rapidApi = (key: string) => ({ 'x-rapidapi-key': key, 'x-rapidapi-host': 'judge0-ce.p.rapidapi.com' });
    const created = await service.app.inject({ method: 'POST', url: '/submissions?base64_encoded=false', payload: submission, headers: rapidApi('judge0-key') });
    assert.equal(created.statusCode, 201, created.body);
    const token = (created.json() as { token: string }).token;
    const shown = await service.app.inject({ method: 'GET', url: `/submissions/${token}?fields=status_id`, headers: rapidApi('judge0-key') });
    assert.deepEqual([shown.statusCode, shown.json()], [200, { status_id: 1 }]);
    const batch = await service.app.inject({ method: 'POST', url: '/submissions/batch', payload: { submissions: [submission] }, headers: rapidApi('judge0-key') });
    assert.equal(batch.statusCode, 201, batch.body);
    for (const url of ['/languages', '/statuses', '/about', '/config_info']) {
      assert.equal((await service.app.inject({ method: 'GET', url, headers: rapidApi('judge0-key') })).statusCode, 200, url);
    }
    // A wrong key: the same answer as a wrong X-Auth-Token, before the body is looked at.
    const wrongRapid = await service.app.inject({ method: 'POST', url: '/submissions', payload: submission, headers: rapidApi('wrong-key') });
    const wrongToken = await service.app.inject({ method: 'POST', url: '/submissions', payload: submission, headers: { 'x-auth-token': 'wrong-key' } });
    assert.equal(wrongRapid.statusCode, 401);
    assert.deepEqual([wrongRapid.statusCode, wrongRapid.json()], [wrongToken.statusCode, wrongToken.json()]);
    assert.equal((await service.app.inject({ method: 'GET', url: '/languages', headers: rapidApi('wrong-key') })).statusCode, 401);
    // The first key header present is the one read, as for the others: a wrong X-Auth-Token is not
    // rescued by a good X-RapidAPI-Key.
    assert.equal((await service.app.inject({ method: 'GET', url: '/languages', headers: { 'x-auth-token': 'wrong-key', ...rapidApi('judge0-key') } })).statusCode, 401);
    // A header only, as RapidAPI's clients send it; one put in the query is refused, and not logged.
    assert.equal((await service.app.inject({ method: 'GET', url: '/languages?X-RapidAPI-Key=judge0-key' })).statusCode, 401);
    assert.equal(loggableUrl('/languages?x-rapidapi-key=judge0-key&a=1'), '/languages?x-rapidapi-key=[redacted]&a=1');
    assert.equal(loggableUrl('/v1/runtimes?Authorization=Bearer%20k'), '/v1/runtimes?Authorization=[redacted]', 'a Bearer key put in the query by mistake');
    // Judge0's routes only.
    assert.equal((await service.app.inject({ method: 'GET', url: '/v1/runtimes', headers: rapidApi('judge0-key') })).statusCode, 401);
    assert.equal((await service.app.inject({ method: 'GET', url: '/api/v2/runtimes', headers: rapidApi('judge0-key') })).statusCode, 401);
    // Never written down: the access log has no headers, and hides a key in the query.
    const answered = logLines.filter((line) => line.msg === 'request answered').map((line) => line.url);
    assert.ok(answered.includes('/submissions?base64_encoded=false'), 'the access log is on');
    assert.ok(answered.includes('/languages?X-RapidAPI-Key=[redacted]'), JSON.stringify(answered));
    assert.ok(!JSON.stringify(logLines).includes('judge0-key'), 'no log line holds the key');
    assert.ok(!JSON.stringify(logLines).includes('wrong-key'), 'nor a wrong one');
  });

  test("a request the HTTP parser refuses is logged without its headers: a key in them stays out of the log", async () => {
    const address = await service.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(address);
    // Headers past Node's limit (HPE_HEADER_OVERFLOW): the parser's error carries the raw request.
    const raw = `GET /languages HTTP/1.1\r\nHost: x\r\nX-RapidAPI-Key: parser-key\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.end(raw));
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('error', reject);
      socket.on('close', () => resolve(text));
    });
    assert.match(answer, /^HTTP\/1\.1 431 /);
    assert.ok(logLines.some((line) => line.msg === 'malformed HTTP request'), 'the refusal is logged');
    // Neither as text nor as a Buffer's bytes (how a serialized error's rawPacket shows).
    const logged = JSON.stringify(logLines);
    assert.ok(!logged.includes('parser-key'), 'without the key');
    assert.ok(!logged.includes([...Buffer.from('parser-key')].join(',')), "nor the key's bytes");
  });

  test("Piston's /api/v2/piston routes take the same keys, and count in the same rate limit, as /api/v2", async () => {
    const get = (url: string, headers: Record<string, string> = {}) => service.app.inject({ method: 'GET', url, headers });
    assert.equal((await get('/api/v2/piston/runtimes')).statusCode, 401);
    assert.equal((await service.app.inject({ method: 'POST', url: '/api/v2/piston/execute', payload: {} })).statusCode, 401);
    assert.equal((await get('/api/v2/piston/connect')).statusCode, 401);
    const key = { 'x-api-key': 'piston-key-of-3' };
    assert.equal((await get('/api/v2/runtimes', key)).statusCode, 200);
    assert.equal((await get('/api/v2/piston/runtimes', key)).statusCode, 200);
    assert.equal((await get('/api/v2/piston/packages', key)).statusCode, 200);
    const limited = await get('/api/v2/runtimes', key);
    assert.equal(limited.statusCode, 429, 'the fourth request of a key of 3, whichever path the others took');
    assert.equal((await get('/api/v2/piston/runtimes', key)).statusCode, 429);
  });

  test('X-Auth-Token is Judge0\'s header only: /v1 and Piston do not read it', async () => {
    const v1 = await service.app.inject({ method: 'GET', url: '/v1/runtimes', headers: { 'x-auth-token': 'judge0-key' } });
    assert.equal(v1.statusCode, 401);
    assert.equal((await service.app.inject({ method: 'GET', url: '/v1/runtimes', headers: { 'x-api-key': 'judge0-key' } })).statusCode, 200);
    const piston = await service.app.inject({ method: 'GET', url: '/api/v2/runtimes', headers: { 'x-auth-token': 'judge0-key' } });
    assert.equal(piston.statusCode, 401);
  });
});

describe('browser pages of other origins (CELLBLOCK_CORS_ORIGINS)', () => {
  const preflight = (service: ServiceHarness, origin: string) =>
    service.app.inject({
      method: 'OPTIONS',
      url: '/submissions',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-auth-token' },
    });

  test('listed origins may call every route (a preflight needs no key); others, and every origin by default, get no CORS headers', async () => {
    const service = await startService({ runtimes: loadRuntimes(), config: { corsOrigins: ['https://ide.example.com'], apiKeys: [{ key: 'judge0-key', requestsPerWindow: 100 }] } });
    try {
      const allowed = await preflight(service, 'https://ide.example.com');
      assert.equal(allowed.statusCode, 204, allowed.body);
      assert.equal(allowed.headers['access-control-allow-origin'], 'https://ide.example.com');
      assert.match(String(allowed.headers['access-control-allow-headers']), /x-auth-token/i, 'the headers asked for are allowed');
      assert.match(String(allowed.headers['access-control-allow-methods']), /POST/);
      const created = await service.app.inject({ method: 'POST', url: '/submissions', payload: { source_code: 'print(1)', language_id: 71 }, headers: { origin: 'https://ide.example.com', 'x-auth-token': 'judge0-key' } });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(created.headers['access-control-allow-origin'], 'https://ide.example.com');
      assert.match(String(created.headers['access-control-expose-headers']), /Retry-After/);
      const other = await preflight(service, 'https://elsewhere.example.org');
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      // An OPTIONS that is no preflight is answered as one, not refused with a bare 400.
      assert.equal((await service.app.inject({ method: 'OPTIONS', url: '/v1/runtimes' })).statusCode, 204);
    } finally {
      await service.close();
    }
    const closed = await startService({ runtimes: loadRuntimes() });
    try {
      const answered = await closed.app.inject({ method: 'GET', url: '/v1/runtimes', headers: { origin: 'https://ide.example.com' } });
      assert.equal(answered.headers['access-control-allow-origin'], undefined);
      assert.equal((await preflight(closed, 'https://ide.example.com')).headers['access-control-allow-origin'], undefined);
    } finally {
      await closed.close();
    }
  });
});

describe('Judge0 batch against the queue maximum', () => {
  test("more valid submissions than may ever wait: 400, as Judge0 refuses a batch's size (not its 503 queue is full, which no retry passes); a batch that fits, queued", async () => {
    const service = await startService({ runtimes: loadRuntimes(), maxQueuedJobs: 3 });
    try {
      const submission = { source_code: 'print(1)', language_id: 71 };
      const batch = (submissions: unknown[]) => service.app.inject({ method: 'POST', url: '/submissions/batch', payload: { submissions } });
      const neverFits = await batch(Array.from({ length: 4 }, () => submission));
      assert.equal(neverFits.statusCode, 400, neverFits.body);
      assert.deepEqual(neverFits.json(), { error: 'number of submissions in a batch should be less than or equal to 3 (max_queue_size)' });
      assert.equal(neverFits.headers['retry-after'], undefined);
      // The invalid ones are not queued, so not counted: three valid of four fit.
      const mixed = await batch([submission, { language_id: 71 }, submission, submission]);
      assert.equal(mixed.statusCode, 201, mixed.body);
      assert.equal((await service.jobs.counts()).waiting, 3);
      const full = await batch([submission]);
      assert.deepEqual([full.statusCode, full.json()], [503, { error: 'queue is full' }]);
    } finally {
      await service.close();
    }
  });
});
