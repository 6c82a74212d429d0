// Piston v2 translation as pure functions: request checks in Piston's order and words, runtime
// selection by SemVer range, and each verdict's status/message/code/signal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findPistonRuntime, pistonRuntimeList } from '../../src/api/compat/piston-runtimes.js';
import { pistonFields, pistonLimitField, PistonRequestError, translatePistonExecute } from '../../src/api/compat/piston-request.js';
import { admissionMessage, admissionProblem } from '../../src/api/submission.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { PistonExecutionError, pistonResponse, pistonStage } from '../../src/api/compat/piston-response.js';
import { pistonExit } from '../../src/api/compat/piston-connect.js';
import { MiB } from '../../src/units.js';
import { done, gcc, go, python311, python39, runtime, runtimes, stage } from './fixtures.js';

const decode = (base64: string): string => Buffer.from(base64, 'base64').toString('utf8');

function rejects(body: unknown, message: string): void {
  assert.throws(
    () => translatePistonExecute(body, runtimes),
    (error: unknown) => error instanceof PistonRequestError && error.statusCode === 400 && error.message === message,
  );
}

describe('piston runtimes', () => {
  it('lists language, version and aliases (with the id when it differs from the language)', () => {
    assert.deepEqual(pistonRuntimeList([python39, gcc]), [
      { language: 'python', version: '3.9.4', aliases: ['py', 'python39'] },
      { language: 'c', version: '12.2.0', aliases: ['gcc'] },
    ]);
  });

  it("shows each version as Piston shows its packages': three-part SemVer, which finds the runtime when sent back", () => {
    // Piston's are semver.parse(...).raw (api/src/runtime.js): a client may hand them to a SemVer
    // library, which takes no 18.20. Ours of one or two parts name a release line: its first release.
    const node = runtime({ id: 'javascript', language: 'javascript', version: '18.20', aliases: ['js'] });
    const jdk = runtime({ id: 'java', language: 'java', version: '17', aliases: [] });
    assert.deepEqual(pistonRuntimeList([node, jdk, go, gcc]).map((listed) => listed.version), ['18.20.0', '17.0.0', '1.19.0', '12.2.0']);
    const ours = loadRuntimes();
    // SemVer 2.0's version core: three numbers without leading zeros.
    const semverCore = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;
    for (const listed of pistonRuntimeList(ours)) {
      assert.match(listed.version, semverCore, listed.language);
      assert.equal(findPistonRuntime(ours, listed.language, listed.version)?.language, listed.language, `${listed.language} ${listed.version}`);
    }
    // The answer to an execute says the same version.
    assert.equal(pistonResponse(done({ run: stage() }), node).version, '18.20.0');
  });

  it("lists no language among its own aliases, as Piston's lists do not (C++ is ours by the alias c++ on /v1)", () => {
    const cpp = runtime({ id: 'cpp', language: 'c++', version: '12.2.0', aliases: ['c++', 'g++'] });
    assert.deepEqual(pistonRuntimeList([cpp]), [{ language: 'c++', version: '12.2.0', aliases: ['g++', 'cpp'] }]);
    assert.equal(findPistonRuntime([cpp], 'c++', '*'), cpp, 'found by its language name still');
    for (const listed of pistonRuntimeList(loadRuntimes())) assert.ok(!listed.aliases.includes(listed.language), listed.language);
  });

  it('selects the highest version satisfying the SemVer range, by name or alias', () => {
    assert.equal(findPistonRuntime(runtimes, 'python', '*'), python311);
    assert.equal(findPistonRuntime(runtimes, 'py', '3.x'), python311);
    assert.equal(findPistonRuntime(runtimes, 'python', '3.9'), python39);
    assert.equal(findPistonRuntime(runtimes, 'python', '3.9.4'), python39);
    assert.equal(findPistonRuntime(runtimes, 'python', '<3.10'), python39);
    assert.equal(findPistonRuntime(runtimes, 'python', '2'), undefined);
    assert.equal(findPistonRuntime(runtimes, 'ruby', '*'), undefined);
  });

  it("takes the aliases Piston's packages give our runtimes", () => {
    // packages/node/*/metadata.json, packages/mono/6.12.0, packages/ruby/3.0.1 in engineer-man/piston.
    const ours = loadRuntimes();
    const named = (language: string) => findPistonRuntime(ours, language, '*')?.id;
    assert.deepEqual(['node-javascript', 'node-js', 'js'].map(named), ['javascript', 'javascript', 'javascript']);
    assert.deepEqual(['mono-csharp', 'mono-c#', 'mono-cs', 'mono', 'c#', 'cs'].map(named), Array(6).fill('csharp'));
    assert.deepEqual(['ruby3', 'rb'].map(named), ['ruby', 'ruby']);
  });

  it('matches two-part toolchain versions such as Go 1.19', () => {
    assert.equal(findPistonRuntime(runtimes, 'golang', '1.19'), go);
    assert.equal(findPistonRuntime(runtimes, 'go', '1.19.0'), go);
  });

  it('takes a two-part version for its release line: any patch release of it matches, the highest match still wins', () => {
    // "1.19" is whichever Go 1.19.x its image has: a client sending the release it knows finds it.
    for (const range of ['1.19.8', '~1.19.3', '^1.19.2', '>=1.19.5 <1.20', '1.19.x', '1']) assert.equal(findPistonRuntime(runtimes, 'go', range), go, range);
    for (const range of ['1.18.9', '1.20.0', '>=1.20', '<1.19.0', '2']) assert.equal(findPistonRuntime(runtimes, 'go', range), undefined, range);
    // A range that is no SemVer range matches none (intersects would throw on it).
    assert.equal(findPistonRuntime(runtimes, 'go', 'one.nineteen'), undefined);
    const go120 = runtime({ id: 'go120', language: 'go', version: '1.20.3', sourceFile: 'main.go' });
    assert.equal(findPistonRuntime([go, go120], 'go', '>=1.19.1'), go120, 'the highest of the matches');
    assert.equal(findPistonRuntime([go, go120], 'go', '1.19.4'), go);
    // Three-part versions are one release each, as before.
    assert.equal(findPistonRuntime(runtimes, 'python', '3.9.5'), undefined);
    // Ours that name a release line (images/runtimes/*.json: their $comment says why).
    const ours = loadRuntimes();
    const named = (language: string, version: string) => findPistonRuntime(ours, language, version)?.id;
    const lines = ours.filter((candidate) => /^\d+\.\d+$/.test(candidate.version));
    assert.ok(lines.some((candidate) => candidate.id === 'javascript'), 'javascript names its release line');
    for (const line of lines) {
      assert.equal(named(line.language, `${line.version}.4`), line.id, `${line.language} ${line.version}.4`);
      assert.equal(named(line.language, `${line.version}.0`), line.id, `${line.language} ${line.version}.0`);
    }
    assert.equal(named('js', '18.20.4'), 'javascript');
    assert.equal(named('js', '18.21.0'), undefined);
  });
});

describe('piston execute request', () => {
  const minimal = { language: 'python', version: '3.x', files: [{ content: 'print(1)' }] };

  it('refuses bad requests with Piston\'s messages, in Piston\'s order', () => {
    rejects(undefined, 'language is required as a string');
    rejects({ language: 5 }, 'language is required as a string');
    rejects({ language: 'python' }, 'version is required as a string');
    rejects({ language: 'python', version: '3' }, 'files is required as an array');
    // Refused before SemVer parses it (a range of "1 1 1 ..." takes seconds per megabyte).
    rejects({ language: 'python', version: '1 '.repeat(40), files: [{ content: 'x' }] }, 'version is longer than 64 characters');
    rejects({ language: 'python', version: '3', files: [{}] }, 'files[0].content is required as a string');
    rejects({ language: 'python', version: '9', files: [{ content: '' }] }, 'python-9 runtime is unknown');
    // A language of any length is echoed shortened, as a name is.
    rejects({ language: 'p'.repeat(10_000), version: '9', files: [{ content: '' }] }, `${'p'.repeat(64)}...-9 runtime is unknown`);
    rejects({ ...minimal, files: [{ content: 'AA==', encoding: 'base64' }] }, 'files must include at least one utf8 encoded file');
    // Piston checks the encodings as sent: one it does not know is no utf8 file here, though it is read as one.
    rejects({ ...minimal, files: [{ content: 'print(1)', encoding: 'text' }] }, 'files must include at least one utf8 encoded file');
    rejects({ ...minimal, run_timeout: '3000' }, 'If specified, run_timeout must be a number');
    rejects({ ...minimal, run_timeout: 20_001 }, 'run_timeout cannot exceed the configured limit of 20000');
    rejects({ ...minimal, compile_cpu_time: -5 }, 'compile_cpu_time must be non-negative');
    // Limits in Piston's order (memory, timeout, CPU time; compile before run): the first is told.
    rejects({ ...minimal, run_cpu_time: -1, run_timeout: -1, run_memory_limit: '1' }, 'If specified, run_memory_limit must be a number');
    rejects({ ...minimal, run_cpu_time: -1, compile_timeout: -1 }, 'compile_timeout must be non-negative');
    const nameRule = 'must be a relative path inside the work directory, of parts of at most 255 bytes and 1024 bytes in all';
    rejects({ ...minimal, files: [{ name: '../x.py', content: '' }] }, `files[0].name "../x.py" ${nameRule}`);
    // Names as /v1 takes them: a part of 255 bytes and a path of 1024 are names, one byte more is not.
    const part = (bytes: number) => 'é'.repeat(Math.floor(bytes / 2)) + 'x'.repeat(bytes % 2);
    const named = (name: string) => translatePistonExecute({ ...minimal, files: [{ content: 'print(1)' }, { name, content: '' }] }, runtimes).request.files[1]!.name;
    assert.equal(named(`a/${part(255)}`), `a/${part(255)}`);
    const longest = [part(255), part(255), part(255), part(255)].join('/'); // 1023 bytes
    assert.equal(named(longest), longest);
    rejects({ ...minimal, files: [{ content: 'print(1)' }, { name: part(256), content: '' }] }, `files[1].name "${part(256).slice(0, 64)}..." ${nameRule}`);
    rejects({ ...minimal, files: [{ content: 'print(1)' }, { name: `${longest}/x`, content: '' }] }, `files[1].name "${longest.slice(0, 64)}..." ${nameRule}`);
    // Shortened between characters: a surrogate pair that would pass 64 UTF-16 units is left out whole, not halved.
    rejects({ ...minimal, files: [{ content: 'print(1)' }, { name: `${'a'.repeat(63)}${'\u{1F600}'.repeat(100)}`, content: '' }] }, `files[1].name "${'a'.repeat(63)}..." ${nameRule}`);
    // A name used twice, echoed shortened (a name may be 1024 bytes).
    const twice = `a/${part(255)}`;
    rejects({ ...minimal, files: [{ content: 'print(1)' }, { name: twice, content: '' }, { name: twice, content: '' }] }, `files[2].name "${twice.slice(0, 64)}..." is used by another file`);
    // A lone surrogate: U+FFFD on disk, another file's name perhaps (it was a 500 from the worker).
    rejects({ ...minimal, files: [{ content: 'print(1)' }, { name: 'a\ud800', content: '' }] }, 'files[1].name "a\ud800" is not valid Unicode (it holds a lone surrogate, which would be written as U+FFFD)');
    rejects({ ...minimal, args: [1] }, 'args must be an array of strings');
    // Beyond Piston's own checks: what the sandbox could not take is refused, not run and failed.
    rejects({ ...minimal, args: ['a', 'b\0c'] }, 'args[1] must not contain NUL characters');
    rejects({ ...minimal, run_memory_limit: 64 * MiB + 0.5 }, 'run_memory_limit must be a whole number of bytes');
  });

  it('translates files, stdin, args and limits into a JobRequest', () => {
    const { runtime, request } = translatePistonExecute(
      {
        language: 'py',
        version: '3.9',
        files: [
          { name: 'data.bin', content: 'AAEC', encoding: 'base64' },
          { content: 'print(input())' },
          { name: 'util.py', content: '6869', encoding: 'hex' },
        ],
        stdin: 'hello',
        args: ['a', 'b'],
        run_timeout: 2000,
        run_cpu_time: 1500,
        run_memory_limit: 64 * MiB,
        compile_timeout: 9000,
        compile_memory_limit: -1,
      },
      runtimes,
    );
    assert.equal(runtime, python39);
    assert.equal(request.runtimeId, 'python39');
    // The first utf8 file is the entry point and comes first; unnamed, it takes the runtime's name.
    assert.deepEqual(request.files.map((file) => file.name), ['main.py', 'data.bin', 'util.py']);
    assert.equal(decode(request.files[0]!.contentBase64), 'print(input())');
    assert.deepEqual([...Buffer.from(request.files[1]!.contentBase64, 'base64')], [0, 1, 2]);
    assert.equal(decode(request.files[2]!.contentBase64), 'hi');
    assert.equal(decode(request.stdinBase64), 'hello\n', 'Piston appends a newline to stdin');
    assert.deepEqual(request.args, ['a', 'b']);
    assert.deepEqual(request.limits, { wallTimeMs: 2000, cpuTimeMs: 1500, memoryBytes: 64 * MiB });
    assert.deepEqual(request.compileLimits, { wallTimeMs: 9000 });
  });

  it('reads a file of an unknown encoding as utf8, as Piston does, beside one whose encoding counts', () => {
    const { request } = translatePistonExecute({ ...minimal, files: [{ content: 'print(1)', encoding: 'text' }, { name: 'b.py', content: 'x', encoding: '' }] }, runtimes);
    // Both are utf8 to Piston's job.js: the first is the entry point.
    assert.deepEqual(request.files.map((file) => [file.name, decode(file.contentBase64)]), [['main.py', 'print(1)'], ['b.py', 'x']]);
    const withNull = translatePistonExecute({ ...minimal, files: [{ content: 'print(2)', encoding: null }] }, runtimes);
    assert.equal(decode(withNull.request.files[0]!.contentBase64), 'print(2)', 'no encoding is utf8');
  });

  it("names each limit by Piston's field in the worker's check's refusals", () => {
    const named = [
      ['limits', 'wallTimeMs'], ['compileLimits', 'wallTimeMs'], ['limits', 'memoryBytes'],
      ['compileLimits', 'memoryBytes'], ['limits', 'cpuTimeMs'], ['compileLimits', 'cpuTimeMs'],
    ] as const;
    assert.deepEqual(named.map(([stage, limit]) => pistonLimitField(stage, limit)), [
      'run_timeout', 'compile_timeout', 'run_memory_limit', 'compile_memory_limit', 'run_cpu_time', 'compile_cpu_time',
    ]);
    assert.equal(pistonLimitField('limits', 'openFiles'), undefined, 'no Piston field sets it');
  });

  it("says the server's maxima in Piston's fields, and that no field of its lowers the output a job could store", () => {
    const policy = { maxFiles: 2, maxTests: 2, maxArgs: 2, maxJobOutputBytes: 64 * MiB, webhookDestinations: undefined as never };
    const refusal = (body: object, maxima: Partial<typeof policy> = {}) => {
      const { runtime: found, request } = translatePistonExecute({ ...minimal, ...body }, runtimes);
      const problem = admissionProblem(request, found, { ...policy, ...maxima }, pistonFields);
      return problem && admissionMessage(problem);
    };
    assert.equal(refusal({ args: ['a', 'b', 'c'] }), 'args: 3 arguments; at most 2');
    assert.equal(refusal({ args: ['a'.repeat(4097)] }), 'args[0] has more than 4096 characters');
    // An argument named by its path, as the NUL check names one (`args[1] must not contain NUL characters`).
    assert.equal(refusal({ args: ['a', 'a'.repeat(4097)] }), 'args[1] has more than 4096 characters');
    assert.equal(refusal({ files: [{ content: '' }, { content: '' }, { content: '' }] }), 'files: 3 files; at most 2');
    // A compile and a run of up to 4 MiB (the fixtures' maxima, which a run's defaults stay within).
    const output = refusal({ language: 'c', version: '*' }, { maxJobOutputBytes: MiB });
    assert.match(output ?? '', /^1 run of up to \d+ bytes and a compile of up to \d+ could store \d+ bytes of output; at most 1048576 per job \(no field of this request lowers it: /);
    assert.doesNotMatch(output ?? '', /limits\.outputBytes|tests/, "none of /v1's fields");
    assert.equal(refusal({ language: 'c', version: '*' }), undefined);
  });

  it("asks for the runtime's `piston` variant where it has one (Java's source launcher), for no other", () => {
    const java = runtime({
      id: 'java', language: 'java', version: '17.0', sourceFile: 'Main.java',
      compile: { argv: ['javac', '{files}'], sourceSuffixes: ['.java'] },
      run: { argv: ['java', 'Main'] },
      variants: { piston: { run: { argv: ['java', '--source', '17', '{entry}'] } }, other: { run: { argv: ['java'] } } },
    });
    const solution = 'public class Solution { public static void main(String[] a) { System.out.println(1); } }';
    const { request } = translatePistonExecute({ language: 'java', version: '17', files: [{ content: solution }], compile_timeout: 5000 }, [java, ...runtimes]);
    assert.equal(request.variant, 'piston');
    // The files as Piston names them (its launcher takes a file of any name): nothing is renamed.
    const named = translatePistonExecute({ language: 'java', version: '*', files: [{ name: 'solution', content: solution }, { name: 'Util.java', content: 'class Util {}' }] }, [java]);
    assert.deepEqual(named.request.files.map((file) => file.name), ['solution', 'Util.java']);
    assert.equal(translatePistonExecute({ language: 'java', version: '*', files: [{ content: solution }] }, [java]).request.files[0]!.name, 'Main.java');
    // Piston's compile limits are checked as Piston checks them, and carried; with no compile they bound nothing.
    assert.deepEqual(request.compileLimits, { wallTimeMs: 5000 });
    const { variants: _variants, ...own } = java;
    for (const other of [own, { ...java, variants: { other: java.variants!.other! } }]) {
      assert.equal(translatePistonExecute({ language: 'java', version: '*', files: [{ content: solution }] }, [other]).request.variant, undefined);
    }
    assert.equal(translatePistonExecute(minimal, runtimes).request.variant, undefined, 'a runtime without variants');
    // Ours: Java's, and only Java's.
    const ours = loadRuntimes();
    const asked = ours.filter((candidate) => translatePistonExecute({ language: candidate.language, version: candidate.version, files: [{ content: '' }] }, ours).request.variant === 'piston');
    assert.deepEqual(asked.map((candidate) => candidate.id), ['java']);
  });

  it('leaves absent, zero and -1 memory limits to the runtime defaults', () => {
    const { request } = translatePistonExecute({ ...minimal, run_timeout: 0, run_memory_limit: -1, stdin: 'x\n' }, runtimes);
    assert.deepEqual(request.limits, {});
    assert.equal(request.compileLimits, undefined);
    assert.equal(decode(request.stdinBase64), 'x\n');
    assert.deepEqual(request.args, []);
  });
});

describe('piston execute response', () => {
  it('reports a clean run with status and message null, time in ms and memory in bytes', () => {
    const response = pistonResponse(done({ run: stage({ stdout: 'hi\n', stderr: 'warn\n' }) }), python311);
    assert.deepEqual(response, {
      language: 'python',
      version: '3.11.2',
      run: {
        stdout: 'hi\n',
        stderr: 'warn\n',
        output: 'hi\nwarn\n',
        code: 0,
        signal: null,
        message: null,
        status: null,
        cpu_time: 12,
        wall_time: 20,
        memory: 3 * MiB,
      },
    });
  });

  it('maps every verdict to isolate\'s status, message, code and signal', () => {
    const cases = [
      [stage({ verdict: 'runtime_error', exitCode: 3 }), 'RE', 'Exited with error status 3', 3, null],
      [stage({ verdict: 'signaled', exitCode: null, signal: 11, signalName: 'SIGSEGV' }), 'SG', 'Caught fatal signal 11', null, 'SIGSEGV'],
      [stage({ verdict: 'memory_limit', exitCode: null, signal: 9, signalName: 'SIGKILL' }), 'SG', 'Caught fatal signal 9', null, 'SIGKILL'],
      [stage({ verdict: 'cpu_time_limit', exitCode: null }), 'TO', 'Time limit exceeded', null, 'SIGKILL'],
      [stage({ verdict: 'signaled', exitCode: null, signal: 24, signalName: 'SIGXCPU' }), 'TO', 'Time limit exceeded', null, 'SIGKILL'],
      [stage({ verdict: 'wall_time_limit', exitCode: null }), 'TO', 'Time limit exceeded (wall clock)', null, 'SIGKILL'],
      [stage({ verdict: 'output_limit', exitCode: null, stdoutTruncated: true }), 'OL', 'stdout length exceeded', null, 'SIGKILL'],
      [stage({ verdict: 'output_limit', exitCode: null, stderrTruncated: true }), 'EL', 'stderr length exceeded', null, 'SIGKILL'],
      [
        stage({ verdict: 'internal_error', exitCode: null, error: { step: 'mount', errno: 1, code: 'EPERM', message: 'mount /proc: EPERM' } }),
        'XX',
        'mount /proc: EPERM',
        null,
        null,
      ],
    ] as const;
    for (const [input, status, message, code, signal] of cases) {
      const output = pistonStage(input);
      assert.deepEqual([output.status, output.message, output.code, output.signal], [status, message, code, signal], input.verdict);
    }
  });

  it('repeats a failed compile stage as run, as Piston does', () => {
    const compile = stage({ verdict: 'runtime_error', exitCode: 1, stderr: 'main.c:1: error\n' });
    const response = pistonResponse(done({ verdict: 'compile_error', compile }, gcc), gcc);
    assert.equal(response.compile?.stderr, 'main.c:1: error\n');
    assert.deepEqual(response.run, response.compile);
    assert.equal(response.run.status, 'RE');
  });

  it('turns a failed or unfinished job into a 500', () => {
    const failed = { id: 'j', status: 'failed' as const, createdAt: '', failure: { code: 'x', message: 'worker lost' } };
    assert.throws(() => pistonResponse(failed, python311), (e: unknown) => e instanceof PistonExecutionError && e.message === 'worker lost');
    const queued = { id: 'j', status: 'queued' as const, createdAt: '' };
    assert.throws(() => pistonResponse(queued, python311), PistonExecutionError);
  });
});

describe("piston /connect's exit message", () => {
  const exit = { verdict: 'ok' as const, exitCode: 0, signal: null, signalName: null, cpuTimeMs: 1, wallTimeMs: 2, peakMemoryBytes: 3 };
  it('says code and signal by name as the run ended', () => {
    assert.deepEqual(pistonExit('run', exit), { type: 'exit', stage: 'run', code: 0, signal: null });
    assert.deepEqual(pistonExit('run', { ...exit, verdict: 'cancelled', exitCode: null, signal: 9, signalName: 'SIGKILL' }), { type: 'exit', stage: 'run', code: null, signal: 'SIGKILL' });
    assert.deepEqual(pistonExit('compile', { ...exit, verdict: 'runtime_error', exitCode: 1 }), { type: 'exit', stage: 'compile', code: 1, signal: null });
  });
  it('says SIGKILL for a run cancelled before its program began (no signal of its own): the client sent a signal', () => {
    assert.deepEqual(pistonExit('run', { ...exit, verdict: 'cancelled', exitCode: null }), { type: 'exit', stage: 'run', code: null, signal: 'SIGKILL' });
  });
});
