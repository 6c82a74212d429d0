// Judge0 CE end to end over HTTP against the running service, with requests written from Judge0's
// documentation examples: hello world in every language, Accepted / Wrong Answer, compile error,
// time limit, memory limit, runtime errors by signal, base64 round trip, batch, number_of_runs,
// callback_url.
import assert from 'node:assert/strict';
import { extname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { until } from '../helpers/until.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { makeZip } from '../helpers/zip.js';
import { serviceSkipReason, startRunningService, type RunningService } from './service.js';

const skip = serviceSkipReason();

type Submission = Record<string, unknown> & { status: { id: number; description: string } };

/** The C example of Judge0's "Create a Submission" documentation. */
const HELLO_NAME_C = '#include <stdio.h>\n\nint main(void) {\n  char name[10];\n  scanf("%s", name);\n  printf("hello, %s\\n", name);\n  return 0;\n}';

describe('Judge0 CE over HTTP', { skip }, () => {
  let service: RunningService;

  before(async () => {
    service = await startRunningService();
  });
  after(() => service?.close());

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const response = await fetch(`${service.baseUrl}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  async function run(submission: Record<string, unknown>, query = ''): Promise<Submission> {
    const response = await call('POST', `/submissions?wait=true${query}`, submission);
    assert.equal(response.status, 201, JSON.stringify(response.body));
    return response.body as Submission;
  }

  async function languageId(pattern: RegExp): Promise<number> {
    const languages = (await call('GET', '/languages')).body as { id: number; name: string }[];
    const language = languages.find((candidate) => pattern.test(candidate.name));
    assert.ok(language, `a language matching ${pattern} in ${JSON.stringify(languages)}`);
    return language.id;
  }

  test('/statuses is Judge0\'s table; /languages/:id describes each listed language', async () => {
    const statuses = (await call('GET', '/statuses')).body as { id: number; description: string }[];
    assert.deepEqual(statuses.map((status) => status.id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert.deepEqual(statuses[4], { id: 5, description: 'Time Limit Exceeded' });
    const languages = (await call('GET', '/languages')).body as { id: number; name: string }[];
    for (const { id, name } of languages) {
      const shown = await call('GET', `/languages/${id}`);
      assert.equal(shown.status, 200);
      assert.equal(shown.body.name, name);
      assert.equal(shown.body.is_archived, false);
      assert.equal(typeof shown.body.run_cmd, 'string');
    }
    assert.equal((await call('GET', '/languages/424242')).status, 404);
  });

  test('/workers counts the live worker\'s slots, idle ones and working ones', async () => {
    const workers = await call('GET', '/workers');
    assert.equal(workers.status, 200);
    assert.equal(workers.body.length, 1);
    const [queue] = workers.body;
    assert.deepEqual([queue.queue, queue.total, queue.available, queue.idle + queue.working], ['cellblock', 2, 2, 2]);
    assert.equal(typeof queue.size, 'number');
  });

  test('hello world in every language, under the listed ids', async () => {
    const listed = (await call('GET', '/languages')).body as { id: number; name: string }[];
    // One runtime per name (C and C++ are listed under Judge0 1.13's older compilers' ids too, the
    // same runtime: run once).
    const languages = [...new Map(listed.map((language) => [language.name, language])).values()];
    assert.equal(languages.length, service.runtimes.length);
    for (const { id, name } of languages) {
      const language = (await call('GET', `/languages/${id}`)).body as { source_file: string };
      // Judge0's file name (script.py) is of the runtime's kind (main.py).
      const runtime = service.runtimes.find((candidate) => extname(candidate.sourceFile) === extname(language.source_file) && name.includes(candidate.version))!;
      const result = await run({ source_code: runtime.helloWorld.source, language_id: id });
      assert.equal(result.status.id, 3, `${name}: ${JSON.stringify(result)}`);
      assert.equal(result.stdout, runtime.helloWorld.stdout);
      assert.match(String(result.time), /^\d+\.\d+$/, 'time in seconds, as a decimal string');
      assert.ok(Number.isInteger(result.memory) && (result.memory as number) > 0, 'memory in KB');
    }
  });

  test('the documented C example: Accepted with the expected output, Wrong Answer without', async () => {
    const accepted = await run({ source_code: HELLO_NAME_C, language_id: 50, stdin: 'Judge0', expected_output: 'hello, Judge0' });
    assert.deepEqual(Object.keys(accepted).sort(), ['compile_output', 'memory', 'message', 'status', 'stderr', 'stdout', 'time', 'token']);
    assert.equal(accepted.stdout, 'hello, Judge0\n');
    assert.deepEqual(accepted.status, { id: 3, description: 'Accepted' });
    const wrong = await run({ source_code: HELLO_NAME_C, language_id: 50, stdin: 'world', expected_output: 'hello, Judge0' });
    assert.deepEqual(wrong.status, { id: 4, description: 'Wrong Answer' });
    assert.equal(wrong.stdout, 'hello, world\n');
    // The token reads back the same result.
    const shown = await call('GET', `/submissions/${wrong.token}?fields=status_id,language_id,exit_code,number_of_runs`);
    assert.deepEqual(shown.body, { status_id: 4, language_id: 50, exit_code: 0, number_of_runs: 1 });
  });

  test('compilation error', async () => {
    const result = await run({ source_code: 'int main(void) { return missing; }', language_id: 50 });
    assert.deepEqual(result.status, { id: 6, description: 'Compilation Error' });
    assert.match(String(result.compile_output), /missing/);
    assert.equal(result.stdout, null);
    assert.equal(result.time, null);
  });

  test("Java's class is Main, as in Judge0: another public class is Judge0's compilation error", async () => {
    const result = await run({ source_code: 'public class Hello { public static void main(String[] a) { System.out.println(42); } }', language_id: 62 });
    assert.deepEqual(result.status, { id: 6, description: 'Compilation Error' });
    assert.match(String(result.compile_output), /class Hello is public, should be declared in a file named Hello\.java/);
  });

  test('compiler_options reach the compiler, and read back as submitted', async () => {
    const source = '#include <stdio.h>\nint main(void) { printf("%d\\n", LEVEL); return 0; }';
    const result = await run({ source_code: source, language_id: 50, compiler_options: '-DLEVEL=7 -O0' }, '&fields=status_id,stdout,compiler_options');
    assert.deepEqual(result, { status_id: 3, stdout: '7\n', compiler_options: '-DLEVEL=7 -O0' });
    const refused = await call('POST', '/submissions', { source_code: 'print(1)', language_id: 71, compiler_options: '-O2' });
    assert.equal(refused.status, 422);
    assert.deepEqual(refused.body, { compiler_options: ['setting compiler options is only allowed for compiled languages'] });
  });

  test('redirect_stderr_to_stdout: stderr in stdout, in the order written', async () => {
    const source = 'import sys\nprint("a", flush=True)\nprint("b", file=sys.stderr, flush=True)\nprint("c", flush=True)';
    const result = await run({ source_code: source, language_id: 71, redirect_stderr_to_stdout: true }, '&fields=status_id,stdout,stderr,redirect_stderr_to_stdout');
    assert.deepEqual(result, { status_id: 3, stdout: 'a\nb\nc\n', stderr: null, redirect_stderr_to_stdout: true });
  });

  test('additional_files: beside the source, which alone is compiled; a bad zip is 422, in a batch too', async () => {
    const zip = makeZip([
      { name: 'helper.c', content: 'int helper(void) { return 41; }\n' },
      { name: 'data/input.txt', content: 'from the zip\n' },
      // unzip -n keeps the source file Judge0 wrote first.
      { name: 'main.c', content: 'this is not C' },
    ]).toString('base64');
    // Both sources compiled, helper() would be defined twice.
    const source = '#include <stdio.h>\n#include "helper.c"\nint main(void) { char line[64]; FILE *f = fopen("data/input.txt", "r"); fgets(line, sizeof line, f); printf("%d %s", helper() + 1, line); return 0; }';
    const result = await run({ source_code: source, language_id: 50, additional_files: zip }, '&fields=status_id,stdout,compile_output,additional_files');
    assert.deepEqual(result, { status_id: 3, stdout: '42 from the zip\n', compile_output: null, additional_files: zip });
    const python = await run(
      { source_code: 'import helper\nprint(helper.greet())', language_id: 71, additional_files: makeZip([{ name: 'helper.py', content: 'def greet():\n    return "hi"\n' }]).toString('base64') },
      '&fields=status_id,stdout',
    );
    assert.deepEqual(python, { status_id: 3, stdout: 'hi\n' });
    const link = makeZip([{ name: 'passwd', symlinkTo: '/etc/passwd' }]).toString('base64');
    const refused = await call('POST', '/submissions', { source_code: 'print(1)', language_id: 71, additional_files: link });
    assert.equal(refused.status, 422);
    assert.deepEqual(refused.body, { additional_files: ['holds a symbolic link (passwd); only regular files are extracted'] });
    const batch = await call('POST', '/submissions/batch', {
      submissions: [
        { source_code: 'print(1)', language_id: 71, additional_files: link },
        { source_code: 'print(2)', language_id: 71, additional_files: makeZip([{ name: 'x.txt', content: 'x' }]).toString('base64') },
      ],
    });
    assert.equal(batch.status, 201);
    assert.deepEqual(batch.body[0], { additional_files: ['holds a symbolic link (passwd); only regular files are extracted'] });
    assert.equal(typeof batch.body[1].token, 'string');
  });

  test('time limit exceeded', async () => {
    const result = await run({ source_code: 'while True: pass', language_id: 71, cpu_time_limit: 1 });
    assert.deepEqual(result.status, { id: 5, description: 'Time Limit Exceeded' });
    // The time is the cgroup's CPU time. The sandbox's RLIMIT_CPU backstop counts in scheduler
    // ticks and can end the program (SIGXCPU, still the time limit) when the cgroup has counted
    // less than the limit on a loaded machine, so the bound below is loose on purpose.
    const seconds = Number(result.time);
    assert.ok(seconds >= 0.5 && seconds <= 1.5, `time ${result.time} s for a 1 s limit`);
  });

  test('max_file_size bounds stdout: exactly that many bytes are Accepted, more are status 8 (SIGXFSZ), whatever the program does about the signal', async () => {
    const fits = await run({ source_code: 'print("x" * 1023)', language_id: 71, max_file_size: 1 }, '&fields=status,stdout');
    assert.deepEqual(fits.status, { id: 3, description: 'Accepted' });
    assert.equal(fits.stdout, `${'x'.repeat(1023)}\n`);
    // Python ignores SIGXFSZ (under isolate it would get EFBIG and exit 120, status 11): the byte
    // past the limit is seen by the stream's size, and not kept.
    const over = await run({ source_code: 'print("x" * 1024)', language_id: 71, max_file_size: 1 }, '&fields=status,stdout');
    assert.deepEqual(over.status, { id: 8, description: 'Runtime Error (SIGXFSZ)' });
    assert.equal(over.stdout, 'x'.repeat(1024));
  });

  test('memory limit: the OOM kill is Runtime Error (Other), signal 9', async () => {
    const result = await run(
      { source_code: 'data = b"x" * (256 * 1024 * 1024)\nprint(len(data))', language_id: 71, memory_limit: 65536 },
      '&fields=status,exit_signal,message,memory',
    );
    assert.deepEqual(result.status, { id: 12, description: 'Runtime Error (Other)' });
    assert.equal(result.exit_signal, 9);
    assert.equal(result.message, 'Caught fatal signal 9');
    assert.ok((result.memory as number) <= 65536 + 1024, `memory ${result.memory} KB within the limit`);
  });

  test("max_file_size: Judge0's default (1024 KB), as config_info says, bounds stdout; a larger one lets more through", async () => {
    const config = (await call('GET', '/config_info')).body as { max_file_size: number };
    assert.equal(config.max_file_size, 1024, "Judge0's MAX_FILE_SIZE default");
    const printing = { source_code: 'import sys\nsys.stdout.write("x" * 2_000_000)', language_id: 71 };
    const bounded = await run(printing, '&fields=status_id,max_file_size,stdout');
    assert.deepEqual([bounded.status_id, bounded.max_file_size], [8, config.max_file_size], 'Runtime Error (SIGXFSZ): the output passed the limit read back');
    // Cut at the limit (give or take the byte the engine keeps to see the flood).
    const printed = (bounded.stdout as string).length;
    assert.ok(printed <= config.max_file_size * 1024 && printed >= config.max_file_size * 1024 - 1, `${printed} bytes printed`);
    const larger = await run({ ...printing, max_file_size: 4096 }, '&fields=status_id,max_file_size,stdout');
    assert.deepEqual([larger.status_id, larger.max_file_size, (larger.stdout as string).length], [3, 4096, 2_000_000]);
  });

  test('runtime errors: NZEC with the exit code, and the signal-specific statuses', async () => {
    const nzec = await run({ source_code: 'import sys\nsys.exit(3)', language_id: 71 }, '&fields=status_id,exit_code,message');
    assert.deepEqual(nzec, { status_id: 11, exit_code: 3, message: 'Exited with error status 3' });
    const signals: [string, number][] = [
      ['int main(void) { volatile int *p = 0; return *p; }', 7],
      ['int main(void) { volatile int dividend = 7, zero = 0; return dividend / zero; }', 9],
      ['#include <stdlib.h>\nint main(void) { abort(); }', 10],
    ];
    for (const [source, statusId] of signals) {
      const result = await run({ source_code: source, language_id: 50 }, '&fields=status_id,exit_signal,message,compile_output');
      assert.equal(result.status_id, statusId, `${source}: ${JSON.stringify(result)}`);
    }
  });

  test('base64 round trip, and Judge0\'s refusals of output that is not UTF-8', async () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const source = 'import sys\nname = input()\nsys.stdout.buffer.write(b"\\xfe\\xff " + name.encode() + b"\\n")';
    const result = await run({ source_code: b64(source), language_id: 71, stdin: b64('Judge0') }, '&base64_encoded=true');
    assert.equal(result.status.id, 3);
    assert.deepEqual(Buffer.from(String(result.stdout), 'base64'), Buffer.from([0xfe, 0xff, ...Buffer.from(' Judge0\n')]));
    const plain = await call('POST', '/submissions?wait=true', { source_code: source, language_id: 71, stdin: 'x' });
    assert.equal(plain.status, 201);
    assert.equal(plain.body.error, 'some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter');
    const shown = await call('GET', `/submissions/${plain.body.token}`);
    assert.equal(shown.status, 400);
    assert.equal((await call('GET', `/submissions/${plain.body.token}?base64_encoded=true&fields=status_id`)).body.status_id, 3);
  });

  test('an expected_output that is not UTF-8 (sent base64) is compared as its bytes, as Judge0 compares them', async () => {
    const b64 = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64');
    const source = b64('import sys; sys.stdout.buffer.write(b"\\xff\\n")');
    const submission = (expected: number[], runs = 1) => ({ source_code: source, language_id: 71, expected_output: b64(Buffer.from(expected)), number_of_runs: runs });
    const accepted = await run(submission([0xff, 0x0a]), '&base64_encoded=true');
    assert.deepEqual(accepted.status, { id: 3, description: 'Accepted' }, JSON.stringify(accepted));
    assert.deepEqual(Buffer.from(String(accepted.stdout), 'base64'), Buffer.from([0xff, 0x0a]));
    assert.equal((await run(submission([0xff]), '&base64_encoded=true')).status.id, 3, 'a trailing newline does not count');
    const wrong = await run(submission([0xfe, 0x0a]), '&base64_encoded=true');
    assert.deepEqual(wrong.status, { id: 4, description: 'Wrong Answer' }, JSON.stringify(wrong));
    // Every run is compared with the same bytes; they read back as submitted.
    const runs = await run(submission([0xff, 0x0a], 2), '&base64_encoded=true');
    assert.equal(runs.status.id, 3, JSON.stringify(runs));
    const shown = await call('GET', `/submissions/${runs.token}?base64_encoded=true&fields=status_id,expected_output,number_of_runs`);
    assert.deepEqual(shown.body, { status_id: 3, expected_output: '/wo=\n', number_of_runs: 2 });
  });

  test('batch: create, then read until every submission is done', async () => {
    const python = await languageId(/^Python \(3/);
    const created = await call('POST', '/submissions/batch', {
      submissions: [
        { source_code: 'print(input())', language_id: python, stdin: 'one', expected_output: 'one' },
        { source_code: 'echo two', language_id: 46 },
        { source_code: 'print(input())', language_id: python, stdin: 'three', expected_output: 'four' },
      ],
    });
    assert.equal(created.status, 201);
    const tokens = (created.body as { token: string }[]).map((item) => item.token);
    let submissions: { token: string; stdout: string; status_id: number }[] = [];
    for (let attempt = 0; attempt < 300; attempt++) {
      const shown = await call('GET', `/submissions/batch?tokens=${tokens.join(',')}&fields=token,stdout,status_id`);
      submissions = shown.body.submissions;
      if (submissions.every((submission) => submission.status_id > 2)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(submissions, [
      { token: tokens[0], stdout: 'one\n', status_id: 3 },
      { token: tokens[1], stdout: 'two\n', status_id: 3 },
      { token: tokens[2], stdout: 'three\n', status_id: 4 },
    ]);
  });

  test('a finished submission reads back what was submitted, under the language id it was submitted with', async () => {
    const created = await call('POST', '/submissions', {
      source_code: 'import sys\nprint(input(), sys.argv[1:])',
      language_id: 92,
      stdin: 'Judge0',
      expected_output: "Judge0 ['a', 'b']",
      cpu_time_limit: 2.5,
      memory_limit: 100000,
      command_line_arguments: 'a b',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    let shown: Record<string, any> = {};
    for (let attempt = 0; attempt < 300; attempt++) {
      shown = (await call('GET', `/submissions/${created.body.token}?fields=*`)).body;
      if (shown.status_id > 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { source_code, language_id, language, stdin, expected_output, cpu_time_limit, memory_limit, command_line_arguments, status, stdout } = shown;
    assert.deepEqual(
      { source_code, language_id, language_name: language?.name, stdin, expected_output, cpu_time_limit, memory_limit, command_line_arguments, status, stdout },
      {
        source_code: 'import sys\nprint(input(), sys.argv[1:])',
        language_id: 92,
        language_name: (await call('GET', '/languages/71')).body.name,
        stdin: 'Judge0',
        expected_output: "Judge0 ['a', 'b']",
        cpu_time_limit: '2.5',
        memory_limit: 100000,
        command_line_arguments: 'a b',
        status: { id: 3, description: 'Accepted' },
        stdout: "Judge0 ['a', 'b']\n",
      },
      JSON.stringify(shown),
    );
  });

  test('number_of_runs runs the program that many times after one compile', async () => {
    const result = await run(
      { source_code: HELLO_NAME_C, language_id: 50, stdin: 'x', expected_output: 'hello, x', number_of_runs: 3 },
      '&fields=status_id,number_of_runs,stdout',
    );
    assert.deepEqual(result, { status_id: 3, number_of_runs: 3, stdout: 'hello, x\n' });
  });

  test('callback_url receives a PUT of the finished submission, base64-encoded, default fields', async () => {
    const receiver = await startWebhookReceiver(() => 200);
    try {
      const created = await call('POST', '/submissions', {
        source_code: 'print("called back")',
        language_id: 71,
        callback_url: receiver.url,
      });
      assert.equal(created.status, 201);
      await until(() => receiver.received.length > 0, 30_000, 20, 'the callback');
      assert.equal(receiver.received.length, 1);
      const [callback] = receiver.received;
      assert.equal(callback!.method, 'PUT');
      assert.equal(callback!.headers['content-type'], 'application/json');
      assert.deepEqual(Object.keys(callback!.body).sort(), ['compile_output', 'memory', 'message', 'status', 'stderr', 'stdout', 'time', 'token']);
      assert.equal(callback!.body.token, created.body.token);
      assert.deepEqual(callback!.body.status, { id: 3, description: 'Accepted' });
      assert.equal(callback!.body.stdout, `${Buffer.from('called back\n').toString('base64')}\n`);
    } finally {
      receiver.close();
    }
  });
});
