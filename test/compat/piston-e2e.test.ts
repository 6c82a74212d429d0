// Piston v2 end to end with the real npm client (piston-client) against the running service:
// runtimes, hello world in every language, stdin and args, files, compile error, time limit,
// memory limit, output limit; Java as Piston runs it (the JDK's source launcher: any class name,
// no compile stage), over execute and connect and both paths, beside /v1's and Judge0's Java
// (javac, class Main), which it leaves as they were.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import piston from 'piston-client';
import { PISTON_VARIANT } from '../../src/api/compat/piston-request.js';
import type { PistonExecuteResponse, PistonStage } from '../../src/api/compat/piston-response.js';
import { pistonVersion } from '../../src/api/compat/piston-runtimes.js';
import { variantOf } from '../../src/images/variants.js';
import { openLiveSocket } from '../helpers/live-socket.js';
import { serviceSkipReason, startRunningService, type RunningService } from './service.js';

const skip = serviceSkipReason();

describe('Piston v2 through piston-client', { skip }, () => {
  let service: RunningService;
  let client: ReturnType<typeof piston>;

  before(async () => {
    service = await startRunningService();
    client = piston({ server: service.baseUrl });
  });
  after(() => service?.close());

  /** piston-client never throws: a failure is `{success: false, error}`, or Piston's `{message}`. */
  async function execute(...args: unknown[]): Promise<PistonExecuteResponse> {
    const result = (await (client.execute as (...a: unknown[]) => Promise<unknown>)(...args)) as Record<string, unknown>;
    assert.ok(result.run, `execute failed: ${JSON.stringify(result)}`);
    return result as unknown as PistonExecuteResponse;
  }

  test('lists the runtimes as Piston does', async () => {
    const runtimes = (await client.runtimes()) as { language: string; version: string; aliases: string[] }[];
    assert.deepEqual(
      runtimes.map((runtime) => runtime.language).sort(),
      service.runtimes.map((runtime) => runtime.language).sort(),
    );
    for (const runtime of runtimes) assert.deepEqual(Object.keys(runtime), ['language', 'version', 'aliases']);
  });

  test('hello world in every language', async () => {
    for (const runtime of service.runtimes) {
      const result = await execute(runtime.language, runtime.helloWorld.source);
      assert.equal(result.language, runtime.language);
      // Three-part SemVer, as Piston's: a release line's first release (pistonVersion).
      assert.equal(result.version, pistonVersion(runtime));
      assert.equal(result.run.stdout, runtime.helloWorld.stdout, `${runtime.id}: ${JSON.stringify(result)}`);
      assert.equal(result.run.code, 0);
      assert.equal(result.run.status, null);
      assert.equal(typeof result.run.cpu_time, 'number');
      assert.ok(result.run.memory > 0, 'memory is the run\'s peak, in bytes');
      // Java runs by its `piston` variant (the source launcher, no compile), the others as /v1 runs them.
      const stages = variantOf(runtime, PISTON_VARIANT) ?? runtime;
      if (stages.compile) assert.equal(result.compile?.code, 0, `${runtime.id} compiles`);
      else assert.ok(!('compile' in result), `${runtime.id}: no compile key`);
    }
  });

  test('stdin, args (piston-client sends 1 2 3 by default) and a base64 data file', async () => {
    const result = await execute({
      language: 'python',
      version: '3',
      files: [
        { name: 'main.py', content: 'import sys\nprint(input(), sys.argv[1:], open("data.bin", "rb").read())' },
        { name: 'data.bin', content: Buffer.from([0, 255]).toString('base64'), encoding: 'base64' },
      ],
      stdin: 'piped',
    });
    assert.equal(result.run.stdout, "piped ['1', '2', '3'] b'\\x00\\xff'\n");
    const custom = await execute('bash', 'echo "$@"', { args: ['a', 'b c'] });
    assert.equal(custom.run.stdout, 'a b c\n');
  });

  test('a compile error: compile and run both carry the compiler\'s failure', async () => {
    const result = await execute('c', 'int main(void) { return missing; }\n');
    assert.ok(result.compile);
    assert.notEqual(result.compile.code, 0);
    assert.equal(result.compile.status, 'RE');
    assert.match(result.compile.stderr, /missing/);
    assert.deepEqual(result.run, result.compile);
  });

  test('runtime error and signal', async () => {
    const failed = await execute('python', 'import sys\nsys.stderr.write("bad\\n")\nsys.exit(3)');
    assert.deepEqual(pick(failed.run), { code: 3, signal: null, status: 'RE', message: 'Exited with error status 3' });
    assert.equal(failed.run.stderr, 'bad\n');
    assert.equal(failed.run.output, 'bad\n');
    const crashed = await execute('c', '#include <signal.h>\nint main(void) { raise(SIGSEGV); return 0; }\n');
    assert.deepEqual(pick(crashed.run), { code: null, signal: 'SIGSEGV', status: 'SG', message: 'Caught fatal signal 11' });
  });

  test('time limit: run_timeout kills the run', async () => {
    const result = await execute('python', 'while True: pass', { runTimeout: 1000 });
    assert.equal(result.run.status, 'TO', JSON.stringify(result.run));
    assert.equal(result.run.signal, 'SIGKILL');
    assert.equal(result.run.code, null);
  });

  test('memory limit: run_memory_limit bounds the run (the OOM killer\'s SIGKILL)', async () => {
    const result = await execute('python', 'data = b"x" * (256 * 1024 * 1024)\nprint(len(data))', { runMemoryLimit: 64 * 1024 * 1024 });
    assert.equal(result.run.stdout, '');
    assert.deepEqual(pick(result.run), { code: null, signal: 'SIGKILL', status: 'SG', message: 'Caught fatal signal 9' });
  });

  /** A Piston execute as a client posts it, to either of its paths: the answer's body, as sent. */
  async function post(path: string, body: object): Promise<PistonExecuteResponse> {
    const response = await fetch(`${service.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = (await response.json()) as PistonExecuteResponse;
    assert.equal(response.status, 200, JSON.stringify(answer));
    return answer;
  }

  test("Java runs as Piston runs it (the JDK's source launcher): the entry file's first class, whatever it and the file are called; no compile stage", async () => {
    const java = (files: object[], more: object = {}) => ({ language: 'java', version: '*', files, ...more });
    const cases: [path: string, what: string, files: object[], stdout: string][] = [
      ['/api/v2/piston/execute', 'public class Solution, unnamed', [{ content: 'public class Solution { public static void main(String[] a) { System.out.println("solution"); } }' }], 'solution\n'],
      ['/api/v2/execute', 'class A, not public', [{ content: 'class A { public static void main(String[] a) { System.out.println("a"); } }' }], 'a\n'],
      [
        '/api/v2/piston/execute',
        'two top-level classes: the first, whose main runs, not the public one',
        [{ content: 'class First { public static void main(String[] a) { System.out.println("first"); } }\npublic class Second { public static void main(String[] a) { System.out.println("second"); } }\n' }],
        'first\n',
      ],
      ['/api/v2/execute', 'a file named without .java', [{ name: 'solution', content: 'public class Hello { public static void main(String[] a) { System.out.println("named"); } }' }], 'named\n'],
      ['/api/v2/piston/execute', 'Main.java holding public class Hello', [{ name: 'Main.java', content: 'public class Hello { public static void main(String[] a) { System.out.println("hello"); } }' }], 'hello\n'],
    ];
    for (const [path, what, files, stdout] of cases) {
      const result = await post(path, java(files));
      assert.deepEqual([result.run.stdout, result.run.stderr, result.run.code, result.run.status], [stdout, '', 0, null], `${what}: ${JSON.stringify(result.run)}`);
      assert.ok(!('compile' in result), `${what}: no compile key, as Piston answers for a package without a compile script`);
      assert.deepEqual([result.language, result.version], ['java', pistonVersion(service.runtimes.find((runtime) => runtime.id === 'java')!)]);
    }
    // stdin and args reach the program: after the source file the launcher takes no option, so
    // arguments that look like the launcher's own (an @argfile, -version, --source) are the program's.
    const echo = 'import java.util.Scanner;\npublic class Echo { public static void main(String[] args) { System.out.println(new Scanner(System.in).nextLine() + " " + String.join(",", args)); } }';
    const echoed = await post('/api/v2/piston/execute', java([{ name: 'echo.txt', content: echo }], { stdin: 'piped', args: ['x', 'y z', '@x', '-version', '--source'] }));
    assert.deepEqual([echoed.run.stdout, echoed.run.code], ['piped x,y z,@x,-version,--source\n', 0], JSON.stringify(echoed.run));
  });

  test("Java that does not compile is the run's exit status 1, javac's message on its stderr, and no compile key, as in Piston", async () => {
    const broken = await post('/api/v2/piston/execute', { language: 'java', version: '*', files: [{ content: 'class A { public static void main(String[] a) { int x = "s"; } }' }] });
    assert.ok(!('compile' in broken), JSON.stringify(broken));
    assert.deepEqual([broken.run.code, broken.run.status, broken.run.message, broken.run.stdout], [1, 'RE', 'Exited with error status 1', ''], JSON.stringify(broken.run));
    assert.match(broken.run.stderr, /incompatible types: String cannot be converted to int/);
    assert.match(broken.run.stderr, /error: compilation failed/);
    // Only the entry file is compiled, as by Piston's launcher: another source beside it is not.
    const twoFiles = await post('/api/v2/execute', {
      language: 'java',
      version: '*',
      files: [{ content: 'public class Main { public static void main(String[] a) { System.out.println(Util.twice(21)); } }' }, { name: 'Util.java', content: 'public class Util { static int twice(int n) { return 2 * n; } }' }],
    });
    assert.equal(twoFiles.run.code, 1, JSON.stringify(twoFiles.run));
    assert.match(twoFiles.run.stderr, /cannot find symbol[\s\S]*Util/);
  });

  test("Java over Piston's WebSocket runs by the launcher too: a run stage, no compile stage", async () => {
    const socket = await openLiveSocket(`${service.baseUrl.replace(/^http/, 'ws')}/api/v2/piston/connect`);
    const echo = 'import java.util.Scanner;\nclass Echo { public static void main(String[] a) { System.out.println("got " + new Scanner(System.in).nextLine()); } }';
    socket.send({ type: 'init', language: 'java', version: '*', files: [{ content: echo }] });
    await socket.next((m) => m.type === 'stage' && m.stage === 'run', 60_000);
    socket.send({ type: 'data', stream: 'stdin', data: 'line\n' });
    await socket.outputHolds('got line\n', { type: 'data', timeoutMs: 60_000 });
    assert.deepEqual(await socket.next((m) => m.type === 'exit', 60_000), { type: 'exit', stage: 'run', code: 0, signal: null });
    assert.deepEqual(await socket.closed, { code: 4999, reason: 'Job Completed' });
    assert.deepEqual(socket.messages.filter((m) => m.type === 'stage').map((m) => m.stage), ['run']);
  });

  test('/v1 and Judge0 keep their Java: javac, then class Main, multi-file jobs too', async () => {
    const v1 = async (body: object) => {
      const response = await fetch(`${service.baseUrl}/v1/jobs?wait=true&timeoutMs=60000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const job = (await response.json()) as { result: { verdict: string; stdout: string; compile?: { verdict: string; stderr: string } } };
      assert.equal(response.status, 200, JSON.stringify(job));
      return job.result;
    };
    const main = await v1({ language: 'java', source: 'public class Main { public static void main(String[] a) { System.out.println(42); } }' });
    assert.deepEqual([main.verdict, main.stdout, main.compile?.verdict], ['ok', '42\n', 'ok'], JSON.stringify(main));
    const multi = await v1({
      language: 'java',
      files: [
        { name: 'Util.java', content: 'public class Util { public static int twice(int n) { return 2 * n; } }' },
        { name: 'Main.java', content: 'public class Main { public static void main(String[] a) { System.out.println(Util.twice(21)); } }' },
      ],
    });
    assert.deepEqual([multi.verdict, multi.stdout, multi.compile?.verdict], ['ok', '42\n', 'ok'], JSON.stringify(multi));
    const other = await v1({ language: 'java', source: 'public class Solution { public static void main(String[] a) { System.out.println(1); } }' });
    assert.equal(other.verdict, 'compile_error');
    assert.match(other.compile?.stderr ?? '', /class Solution is public, should be declared in a file named Solution\.java/);
    const judge0 = await fetch(`${service.baseUrl}/submissions?wait=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ language_id: 62, source_code: 'public class Solution { public static void main(String[] a) { System.out.println(1); } }' }),
    });
    const submission = (await judge0.json()) as { status: { id: number }; compile_output: string };
    assert.equal(submission.status.id, 6, JSON.stringify(submission));
    assert.match(submission.compile_output, /class Solution is public/);
  });

  test('Piston\'s 400s reach the client as {message}: a limit above the maximum, an unknown language', async () => {
    const message = async (...args: unknown[]) =>
      ((await (client.execute as (...a: unknown[]) => Promise<unknown>)(...args)) as { message?: string }).message;
    assert.match((await message('python', 'print(1)', { runTimeout: 10_000_000 })) ?? '', /^run_timeout cannot exceed the configured limit of \d+$/);
    // The client finds no version of an unknown language in /runtimes and sends none.
    assert.equal(await message('cobol', 'DISPLAY "HI".'), 'version is required as a string');
    assert.equal(await message('cobol', 'DISPLAY "HI".', { version: '*' }), 'cobol-* runtime is unknown');
    assert.equal(await message('python', 'print(1)', { version: '1.0.0' }), 'python-1.0.0 runtime is unknown');
  });
});

function pick(stage: PistonStage) {
  return { code: stage.code, signal: stage.signal, status: stage.status, message: stage.message };
}
