// Piston v2 end to end with the real npm client (piston-client) against the running service:
// runtimes, hello world in every language, stdin and args, files, compile error, time limit,
// memory limit, output limit; Java (class Main; another public class is a compilation error),
// posted to the public instance's path.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import piston from 'piston-client';
import type { PistonExecuteResponse, PistonStage } from '../../src/api/compat/piston-response.js';
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
      assert.equal(result.version, runtime.version);
      assert.equal(result.run.stdout, runtime.helloWorld.stdout, `${runtime.id}: ${JSON.stringify(result)}`);
      assert.equal(result.run.code, 0);
      assert.equal(result.run.status, null);
      assert.equal(typeof result.run.cpu_time, 'number');
      assert.ok(result.run.memory > 0, 'memory is the run\'s peak, in bytes');
      if (runtime.compile) assert.equal(result.compile?.code, 0, `${runtime.id} compiles`);
      else assert.equal(result.compile, undefined);
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

  test("Java posted to the public instance's path: class Main runs; another public class is a compilation error (a known difference: Piston's launcher runs any class)", async () => {
    /** As clients of the public Piston instance post it: its path, only the host changed. */
    const post = async (files: object[]): Promise<PistonExecuteResponse> => {
      const response = await fetch(`${service.baseUrl}/api/v2/piston/execute`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ language: 'java', version: '*', files }),
      });
      const body = (await response.json()) as PistonExecuteResponse;
      assert.equal(response.status, 200, JSON.stringify(body));
      return body;
    };
    const main = await post([{ content: 'public class Main{public static void main(String[] a){System.out.println(42);}}' }]);
    assert.deepEqual([main.run.stdout, main.run.code], ['42\n', 0], JSON.stringify(main.run));
    const hello = await post([{ content: 'public class Hello{public static void main(String[] a){System.out.println(42);}}' }]);
    assert.notEqual(hello.compile?.code, 0);
    assert.match(hello.compile?.stderr ?? '', /class Hello is public, should be declared in a file named Hello\.java/);
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
