// Judge0 CE translation as pure functions: the status table, verdict → status, submission
// validation in Rails' words and Judge0's units, and serialization (fields, base64, averages).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AdditionalFiles } from '../../src/api/compat/judge0-additional-files.js';
import { Judge0Languages } from '../../src/api/compat/judge0-languages.js';
import { judge0ConfigInfo } from '../../src/api/compat/judge0-info.js';
import { judge0Fields, Judge0ValidationError, translateJudge0Submission } from '../../src/api/compat/judge0-request.js';
import { JUDGE0_STATUS_LIST, judge0RunOutcome } from '../../src/api/compat/judge0-statuses.js';
import {
  JUDGE0_ATTRIBUTES,
  Judge0BadRequestError,
  judge0Attributes,
  judge0Seconds,
  parseFields,
  rubyEncode64,
  serializeSubmission,
} from '../../src/api/compat/judge0-submission.js';
import { laterFieldsOf, type JobRecord, type JobRequest } from '../../src/jobs/model.js';
import { JobDataError, toExecuteRequest } from '../../src/queue/codec.js';
import { MiB } from '../../src/units.js';
import { done, gcc, go, python311, python39, runtime, stage } from './fixtures.js';

const python2 = runtime({ id: 'python2', language: 'python', version: '2.7.18', sourceFile: 'main.py' });
const languages = new Judge0Languages([python311, python39, python2, gcc, go]);
/** What a worker reads in a job's options (JobProducer): queued by an API of today, or by an earlier one. */
const today = { readsResultsApart: true };
const older = { readsResultsApart: false };
const decode = (base64: string): string => Buffer.from(base64, 'base64').toString('utf8');

function invalid(params: unknown, errors: Record<string, string[]>, base64 = false, additional?: AdditionalFiles): void {
  assert.throws(
    () => translateJudge0Submission(params, base64, languages, additional),
    (error: unknown) => {
      assert.ok(error instanceof Judge0ValidationError);
      assert.deepEqual(error.errors, errors);
      return true;
    },
  );
}

describe('judge0 statuses', () => {
  it('is Judge0 CE\'s table, ids 1 to 14', () => {
    assert.deepEqual(
      JUDGE0_STATUS_LIST.map((status) => `${status.id} ${status.description}`),
      [
        '1 In Queue',
        '2 Processing',
        '3 Accepted',
        '4 Wrong Answer',
        '5 Time Limit Exceeded',
        '6 Compilation Error',
        '7 Runtime Error (SIGSEGV)',
        '8 Runtime Error (SIGXFSZ)',
        '9 Runtime Error (SIGFPE)',
        '10 Runtime Error (SIGABRT)',
        '11 Runtime Error (NZEC)',
        '12 Runtime Error (Other)',
        '13 Internal Error',
        '14 Exec Format Error',
      ],
    );
  });

  it('maps verdicts as IsolateJob#determine_status maps isolate\'s meta', () => {
    const cases: [Parameters<typeof stage>[0], number, string | null, number, number | null][] = [
      [{}, 3, null, 0, null],
      [{ passed: true }, 3, null, 0, null],
      [{ passed: false }, 4, null, 0, null],
      [{ verdict: 'cpu_time_limit', exitCode: null }, 5, 'Time limit exceeded', 0, null],
      [{ verdict: 'wall_time_limit', exitCode: null }, 5, 'Time limit exceeded (wall clock)', 0, null],
      [{ verdict: 'signaled', exitCode: null, signal: 24, signalName: 'SIGXCPU' }, 5, 'Time limit exceeded', 0, null],
      [{ verdict: 'signaled', exitCode: null, signal: 11, signalName: 'SIGSEGV' }, 7, 'Caught fatal signal 11', 0, 11],
      [{ verdict: 'signaled', exitCode: null, signal: 25, signalName: 'SIGXFSZ' }, 8, 'Caught fatal signal 25', 0, 25],
      [{ verdict: 'signaled', exitCode: null, signal: 8, signalName: 'SIGFPE' }, 9, 'Caught fatal signal 8', 0, 8],
      [{ verdict: 'signaled', exitCode: null, signal: 6, signalName: 'SIGABRT' }, 10, 'Caught fatal signal 6', 0, 6],
      [{ verdict: 'signaled', exitCode: null, signal: 15, signalName: 'SIGTERM' }, 12, 'Caught fatal signal 15', 0, 15],
      [{ verdict: 'memory_limit', exitCode: null, signal: 9, signalName: 'SIGKILL' }, 12, 'Caught fatal signal 9', 0, 9],
      [{ verdict: 'output_limit', exitCode: null, stdoutTruncated: true }, 8, 'Caught fatal signal 25', 0, 25],
      [{ verdict: 'runtime_error', exitCode: 2 }, 11, 'Exited with error status 2', 2, null],
      [{ verdict: 'internal_error', exitCode: null, error: { step: 'mount', errno: 1, code: 'EPERM', message: 'mount: EPERM' } }, 13, 'mount: EPERM', 0, null],
      [{ verdict: 'internal_error', exitCode: null, error: { step: 'execve', errno: 8, code: 'ENOEXEC', message: 'execve(./a.out): Exec format error' } }, 14, 'execve(./a.out): Exec format error', 0, null],
    ];
    for (const [fields, id, message, exitCode, exitSignal] of cases) {
      const outcome = judge0RunOutcome(stage(fields));
      assert.deepEqual([outcome.status.id, outcome.message, outcome.exitCode, outcome.exitSignal], [id, message, exitCode, exitSignal], JSON.stringify(fields));
    }
  });
});

describe('judge0 languages', () => {
  it('serves the well-known ids with the runtime\'s own version, newest runtime first', () => {
    assert.deepEqual(
      languages.listed.map(({ id, name, runtime: r }) => [id, name, r.id]),
      [
        // Judge0 1.13 lists its older GCCs too: the same runtime, under the same name.
        [48, 'C (GCC 12.2.0)', 'c'],
        [49, 'C (GCC 12.2.0)', 'c'],
        [50, 'C (GCC 12.2.0)', 'c'],
        [60, 'Go (1.19)', 'go'],
        [70, 'Python (2.7.18)', 'python2'],
        [71, 'Python (3.11.2)', 'python'],
      ],
    );
    assert.equal(languages.byLanguageId(92)?.runtime, python311, 'newer Judge0 ids of Python 3 are accepted');
    assert.equal(languages.byLanguageId(49)?.id, 50);
    assert.equal(languages.byLanguageId(62), undefined, 'no Java runtime here');
    assert.equal(languages.byRuntime('python')?.id, 71);
  });
});

describe('judge0 submission request', () => {
  it('answers Judge0\'s documented 422s', () => {
    invalid({ source_code: 'x' }, { language_id: ["can't be blank"] });
    invalid({ source_code: 'x', language_id: 150000 }, { language_id: ["language with id 150000 doesn't exist"] });
    invalid({ language_id: 71, source_code: '  ' }, { source_code: ["can't be blank"] });
  });

  it('collects every failing attribute with Rails\' messages and the runtime\'s maxima in Judge0 units', () => {
    invalid(
      {
        source_code: 'print(1)',
        language_id: '71',
        number_of_runs: 0,
        cpu_time_limit: 11,
        wall_time_limit: 0.5,
        memory_limit: 1000,
        max_processes_and_or_threads: 'many',
        max_file_size: 5000,
        enable_per_process_and_thread_time_limit: true,
        enable_network: true,
        compiler_options: '-O2',
        callback_url: 'ftp://example.invalid/x',
      },
      {
        number_of_runs: ['must be greater than 0'],
        cpu_time_limit: ['must be less than or equal to 10.0'],
        wall_time_limit: ['must be greater than or equal to 1'],
        memory_limit: ['must be greater than or equal to 2048'],
        max_processes_and_or_threads: ['is not a number'],
        max_file_size: ['must be less than or equal to 4096'],
        enable_per_process_and_thread_time_limit: ['this option cannot be enabled'],
        enable_network: ['enabling network is not allowed'],
        compiler_options: ['setting compiler options is only allowed for compiled languages'],
        callback_url: ['is not a valid URL'],
      },
    );
  });

  it('refuses what the sandbox could not take: a count that truncates to none, NUL in the arguments', () => {
    invalid(
      { source_code: 'print(1)', language_id: 71, max_processes_and_or_threads: 0.5, command_line_arguments: 'a\u0000b' },
      { max_processes_and_or_threads: ['must be greater than 0'], command_line_arguments: ['must not contain NUL characters'] },
    );
  });

  it('calls an object or array where text belongs invalid (String() of one can throw or recurse)', () => {
    const hostile = { toString: 1 };
    let nested: unknown[] = [];
    for (let i = 0; i < 100_000; i++) nested = [nested];
    invalid({ source_code: 'print(1)', language_id: hostile }, { language_id: ['is invalid'] });
    invalid({ source_code: 'print(1)', language_id: 71, command_line_arguments: hostile }, { command_line_arguments: ['is invalid'] });
    invalid({ source_code: 'print(1)', language_id: 71, command_line_arguments: nested }, { command_line_arguments: ['is invalid'] });
    invalid({ source_code: 'x', language_id: 50, compiler_options: hostile }, { compiler_options: ['is invalid'] });
    invalid({ source_code: 'print(1)', language_id: 71, callback_url: hostile }, { callback_url: ['is not a valid URL'] });
  });

  it('takes compiler_options for a compiled language as Judge0 hands them to bash: metacharacters deleted, split on whitespace', () => {
    const { request } = translateJudge0Submission({ source_code: 'int main(){}', language_id: 50, compiler_options: ' -O0  -DX=1;rm -rf /  -Wall|cat ' }, false, languages);
    assert.deepEqual(request.compileArgs, ['-O0', '-DX=1rm', '-rf', '/', '-Wallcat']);
    assert.equal(translateJudge0Submission({ source_code: 'int main(){}', language_id: 50, compiler_options: '  ' }, false, languages).request.compileArgs, undefined);
    invalid({ source_code: 'print(1)', language_id: 71, compiler_options: '-O2' }, { compiler_options: ['setting compiler options is only allowed for compiled languages'] });
    invalid({ source_code: 'x', language_id: 50, compiler_options: `-D${'x'.repeat(511)}` }, { compiler_options: ['is too long (maximum is 512 characters)'] });
    invalid({ source_code: 'x', language_id: 50, compiler_options: '-Da\u0000b' }, { compiler_options: ['must not contain NUL characters'] });
    // A compiled runtime whose compile command has no place for them (an operator's own).
    const fixed = runtime({ id: 'c', language: 'c', version: '12.2.0', sourceFile: 'main.c', compile: { argv: ['gcc', '{files}'] } });
    const cpp = runtime({ id: 'cpp', language: 'c++', version: '12.2.0', sourceFile: 'main.cpp', compile: { argv: ['g++', '{args}', '{files}'] } });
    assert.throws(
      () => translateJudge0Submission({ source_code: 'x', language_id: 50, compiler_options: '-O0' }, false, new Judge0Languages([fixed, cpp])),
      (error: unknown) => error instanceof Judge0ValidationError && /^setting compiler options is only allowed for C\+\+$/.test(error.errors.compiler_options?.[0] ?? ''),
    );
  });

  it('takes redirect_stderr_to_stdout, and reads Judge0\'s booleans as Rails casts them', () => {
    const redirected = (value: unknown) =>
      translateJudge0Submission({ source_code: 'print(1)', language_id: 71, redirect_stderr_to_stdout: value }, false, languages).request.stderrToStdout;
    for (const value of [true, 'true', 1, '1', 'yes', 'on', 'True']) assert.equal(redirected(value), true, JSON.stringify(value));
    for (const value of [false, 'false', 0, '0', 'f', 'off', '', null, undefined]) assert.equal(redirected(value), undefined, JSON.stringify(value));
    // The same cast refuses what it turns on: "yes" is true to Rails, so Judge0 would refuse it too.
    invalid({ source_code: 'print(1)', language_id: 71, enable_network: 'yes' }, { enable_network: ['enabling network is not allowed'] });
  });

  it('puts additional_files beside the source file, which is kept over an entry of its name, and compiles the source file alone', () => {
    const zipBase64 = Buffer.from('zip').toString('base64');
    const additional = {
      zipBase64,
      unpackedBytes: 60,
      files: [
        { name: 'helper.c', content: Buffer.from('int helper(void) { return 1; }') },
        { name: 'main.c', content: Buffer.from('int main(void) { return 2; }') },
      ],
    };
    const params = { source_code: '#include "helper.c"\nint main(void) { return helper(); }', language_id: 50, additional_files: zipBase64 };
    const { request } = translateJudge0Submission(params, false, languages, additional);
    assert.deepEqual(
      request.files.map((file) => [file.name, decode(file.contentBase64)]),
      [['main.c', params.source_code], ['helper.c', 'int helper(void) { return 1; }']],
    );
    assert.equal(request.compileEntryOnly, true);
    assert.equal(translateJudge0Submission({ source_code: 'int main(){}', language_id: 50 }, false, languages).request.compileEntryOnly, undefined);
    invalid({ ...params, additional_files: 'x' }, { additional_files: ['holds a symbolic link (a)'] }, false, { error: 'holds a symbolic link (a)' });
    assert.throws(() => translateJudge0Submission(params, false, languages), /additional_files was not read/);
    // Judge0 writes an interpreted program as script.py: an entry main.py is a file of its own.
    const python = translateJudge0Submission({ source_code: 'import main', language_id: 71, additional_files: zipBase64 }, false, languages, {
      zipBase64,
      unpackedBytes: 30,
      files: [{ name: 'main.py', content: Buffer.from('print(1)') }, { name: 'script.py', content: Buffer.from('print(2)') }],
    });
    assert.deepEqual(python.request.files.map((file) => [file.name, decode(file.contentBase64)]), [['script.py', 'import main'], ['main.py', 'print(1)']]);
  });

  it("names the source file as Judge0 does, where Judge0's name is of the runtime's kind", () => {
    const fileOf = (languageId: number, table = languages) => table.byLanguageId(languageId)!.sourceFile;
    assert.deepEqual([fileOf(71), fileOf(70), fileOf(50), fileOf(60)], ['script.py', 'script.py', 'main.c', 'main.go']);
    // A runtime the table did not foresee (a Python of .pyz archives) keeps the name it runs by.
    const zipped = new Judge0Languages([runtime({ id: 'python', language: 'python', version: '3.12.0', sourceFile: 'main.pyz' })]);
    assert.equal(fileOf(71, zipped), 'main.pyz');
  });

  it("names its attributes in the server's refusals: a run's limits, the counted lists (a compile has no limit of its own)", () => {
    const names = (['cpuTimeMs', 'wallTimeMs', 'memoryBytes', 'stackBytes', 'pids', 'fileSizeBytes', 'outputBytes', 'openFiles'] as const).map((limit) => judge0Fields.limit('limits', limit));
    assert.deepEqual(names, ['cpu_time_limit', 'wall_time_limit', 'memory_limit', 'stack_limit', 'max_processes_and_or_threads', 'max_file_size', 'max_file_size', undefined]);
    assert.equal(judge0Fields.limit('compileLimits', 'memoryBytes'), undefined);
    assert.deepEqual((['files', 'args', 'compileArgs', 'tests', 'outputFiles'] as const).map((list) => judge0Fields.list(list)?.field), [
      'additional_files', 'command_line_arguments', 'compiler_options', 'number_of_runs', undefined,
    ]);
  });

  it('keeps a CPU time limit under half a millisecond as 1 ms, not as none', () => {
    const { request } = translateJudge0Submission({ source_code: 'print(1)', language_id: 71, cpu_time_limit: 0.0004 }, false, languages);
    assert.deepEqual(request.limits, { cpuTimeMs: 1, fileSizeBytes: MiB, outputBytes: MiB });
  });

  it("applies Judge0's default max_file_size (1024 KB) to files and stdout alike where none is given, as config_info and the read back say", () => {
    // Runtimes as shipped: files of 16 MiB but output of 1 MiB by default. Judge0 has one limit for
    // both (its stdout is a file in the box), 1024 KB unless the submission gives one.
    const shipped = runtime({
      id: 'python', language: 'python', version: '3.11.2', sourceFile: 'main.py',
      defaultLimits: { ...python311.defaultLimits, fileSizeBytes: 16 * MiB, outputBytes: MiB },
      maxLimits: { ...python311.maxLimits, fileSizeBytes: 64 * MiB, outputBytes: 16 * MiB },
    });
    const shippedLanguages = new Judge0Languages([shipped]);
    const limitsOf = (params: object, on = shippedLanguages) => {
      const { limits } = translateJudge0Submission({ source_code: 'print(1)', language_id: 71, ...params }, false, on).request;
      return [limits.fileSizeBytes, limits.outputBytes];
    };
    assert.deepEqual(limitsOf({}), [MiB, MiB]);
    assert.deepEqual(limitsOf({ max_file_size: 4096 }), [4 * MiB, 4 * MiB]);
    assert.deepEqual(limitsOf({ max_file_size: 0 }), [64 * MiB, 16 * MiB], '"no limit": the maxima');
    const config = judge0ConfigInfo({ languages: shippedLanguages, maxQueuedJobs: 10, maxTests: 10, maxBatchSize: 20, maxExtractBytes: MiB });
    assert.deepEqual([config.max_file_size, config.max_max_file_size], [1024, 64 * 1024]);
    const { request } = translateJudge0Submission({ source_code: 'print(1)', language_id: 71 }, false, shippedLanguages);
    const record: JobRecord = { id: 'job-1', status: 'queued', createdAt: '2026-11-23T09:00:00.000Z', request };
    assert.deepEqual(serializeSubmission(judge0Attributes(record, shippedLanguages), parseFields('max_file_size'), false), { max_file_size: 1024 });
    // A runtime whose maxima are below Judge0's default: its maximum, for files and output alike.
    const small = runtime({ id: 'python', language: 'python', version: '3.11.2', sourceFile: 'main.py', maxLimits: { ...python311.maxLimits, fileSizeBytes: 512 * 1024, outputBytes: 256 * 1024 } });
    assert.deepEqual(limitsOf({}, new Judge0Languages([small])), [256 * 1024, 256 * 1024]);
  });

  it('translates source, stdin, arguments and limits (seconds, KB) into a JobRequest', () => {
    const { language, request, callbackUrl } = translateJudge0Submission(
      {
        source_code: 'import sys; print(sys.argv)',
        language_id: 71,
        stdin: 'Judge0',
        command_line_arguments: 'a  b;rm c',
        cpu_time_limit: 1.5,
        wall_time_limit: '3',
        memory_limit: 128000,
        stack_limit: 0,
        max_processes_and_or_threads: 30,
        max_file_size: 1024,
        cpu_extra_time: 0.5,
        callback_url: 'http://127.0.0.1:9/done',
      },
      false,
      languages,
    );
    assert.equal(language.id, 71);
    assert.equal(callbackUrl, 'http://127.0.0.1:9/done');
    assert.equal(request.runtimeId, 'python');
    assert.deepEqual(request.files.map((file) => [file.name, decode(file.contentBase64)]), [['script.py', 'import sys; print(sys.argv)']], "Judge0's file name");
    assert.equal(decode(request.stdinBase64), 'Judge0');
    assert.deepEqual(request.args, ['a', 'brm', 'c'], 'shell metacharacters are deleted, as Judge0 does');
    assert.deepEqual(request.limits, {
      cpuTimeMs: 1500,
      wallTimeMs: 3000,
      memoryBytes: 128000 * 1024,
      stackBytes: 64 * MiB,
      pids: 30,
      fileSizeBytes: MiB,
      outputBytes: MiB,
    });
    assert.equal(request.tests, undefined);
  });

  it('decodes base64 attributes and makes one test per run when there is an expected output', () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const { request } = translateJudge0Submission(
      { source_code: b64('print(input())'), language_id: 71, stdin: b64('hi'), expected_output: b64('hi\n'), number_of_runs: 3 },
      true,
      languages,
    );
    assert.equal(decode(request.files[0]!.contentBase64), 'print(input())');
    assert.deepEqual(request.tests, Array.from({ length: 3 }, () => ({ stdinBase64: b64('hi'), expectedOutput: 'hi\n' })));
  });

  it('sends an expected output that is not UTF-8 as its bytes, one that is as text (what every worker reads)', () => {
    const b64 = (bytes: Buffer) => bytes.toString('base64');
    const translated = (expected: Buffer, runs = 1) =>
      translateJudge0Submission({ source_code: b64(Buffer.from('print(1)')), language_id: 71, expected_output: b64(expected), number_of_runs: runs }, true, languages).request;
    // 0xff is no UTF-8: as text it would be U+FFFD, whose three bytes no program printing 0xff matches.
    const invalidUtf8 = Buffer.from([0x61, 0xff, 0x0a]);
    const bytes = translated(invalidUtf8, 2);
    assert.deepEqual(bytes.tests, Array.from({ length: 2 }, () => ({ stdinBase64: '', expectedOutputBase64: b64(invalidUtf8) })));
    assert.deepEqual(laterFieldsOf(bytes), ['stopOnFailure', 'tests[].expectedOutputBase64'], 'a later field: refused while an older worker is live');
    // A worker reads the bytes back as they were sent.
    assert.deepEqual(toExecuteRequest(bytes, new AbortController().signal, today).tests?.[0]?.expectedOutput, invalidUtf8);
    // A worker refuses a test in neither shape: both forms at once, or bytes that are no string.
    for (const test of [
      { stdinBase64: '', expectedOutput: 'a', expectedOutputBase64: b64(invalidUtf8) },
      { stdinBase64: '', expectedOutputBase64: 7 },
    ]) {
      const malformed = { ...bytes, tests: [test] } as unknown as JobRequest;
      assert.throws(() => toExecuteRequest(malformed, new AbortController().signal, today), (error: unknown) => error instanceof JobDataError && /tests must be/.test(error.message));
    }
    for (const notUtf8 of [[0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xfe, 0xff]]) {
      assert.equal(translated(Buffer.from(notUtf8)).tests?.[0]?.expectedOutputBase64, b64(Buffer.from(notUtf8)), `${notUtf8}: a cut sequence, a surrogate, an overlong form`);
    }
    const text = translated(Buffer.from('é \ufeff1\n'));
    assert.deepEqual(text.tests, [{ stdinBase64: '', expectedOutput: 'é \ufeff1\n' }], 'UTF-8, a byte order mark kept');
    assert.deepEqual(laterFieldsOf(text), []);
    // At the start too, where a TextDecoder would drop it: the text is exactly the bytes sent.
    const leading = translated(Buffer.from('\ufeff1\n'));
    assert.deepEqual(leading.tests, [{ stdinBase64: '', expectedOutput: '\ufeff1\n' }]);
    assert.deepEqual(Buffer.from(leading.tests![0]!.expectedOutput!, 'utf8'), Buffer.from('\ufeff1\n'));
  });

  it("marks as a lossy UTF-8 reading the text expected output with U+FFFD that an earlier API queued (no READS_RESULTS_APART_OPTION), for `lines` only", () => {
    const b64 = (bytes: Buffer) => bytes.toString('base64');
    const sent = Buffer.from([0xff, 0xfe, 0x41, 0x0a]);
    const request = translateJudge0Submission({ source_code: b64(Buffer.from('print(1)')), language_id: 71, expected_output: b64(sent) }, true, languages).request;
    assert.deepEqual(request.tests, [{ stdinBase64: '', expectedOutputBase64: b64(sent) }]);
    // What an API before tests[].expectedOutputBase64 queued: the bytes' lossy UTF-8 reading.
    const lossy = '\ufffd\ufffdA\n';
    const earlier: JobRequest = { ...request, tests: [{ stdinBase64: '', expectedOutput: sent.toString('utf8') }] };
    assert.equal(earlier.tests![0]!.expectedOutput, lossy);
    const testOf = (job: JobRequest, producer: { readsResultsApart: boolean }) => toExecuteRequest(job, new AbortController().signal, producer).tests?.[0];
    assert.deepEqual(testOf(earlier, older), { stdin: Buffer.alloc(0), expectedOutput: lossy, expectedOutputReading: 'lossy-utf8' });
    assert.deepEqual(testOf({ ...earlier, comparison: { mode: 'lines' } }, older)?.expectedOutputReading, 'lossy-utf8');
    // An API that sets the option sends such bytes as bytes: its U+FFFD is one that was sent.
    assert.deepEqual(testOf(earlier, today), { stdin: Buffer.alloc(0), expectedOutput: lossy });
    assert.deepEqual(testOf(request, older), { stdin: Buffer.alloc(0), expectedOutput: sent }, 'bytes are no reading');
    assert.equal(testOf({ ...earlier, tests: [{ stdinBase64: '', expectedOutput: 'A\n' }] }, older)?.expectedOutputReading, undefined, 'no U+FFFD: the readings agree');
    // The workers of those APIs compared `exact` and `tokens` as bytes, as these do.
    for (const mode of ['exact', 'tokens'] as const) assert.equal(testOf({ ...earlier, comparison: { mode } }, older)?.expectedOutputReading, undefined, mode);
  });

  it('stops the runs at the first that is not Accepted, as Judge0 does', () => {
    const translated = (params: object) => translateJudge0Submission({ source_code: 'print(1)', language_id: 71, ...params }, false, languages).request;
    assert.equal(translated({ number_of_runs: 3 }).stopOnFailure, true);
    assert.equal(translated({ number_of_runs: 2, expected_output: '1' }).stopOnFailure, true);
    assert.equal(translated({ number_of_runs: 1, expected_output: '1' }).stopOnFailure, undefined, 'one run has nothing after it to stop');
    assert.equal(translated({}).stopOnFailure, undefined);
  });

  it("bounds number_of_runs at Judge0's 20 or the server's CELLBLOCK_MAX_TESTS, whichever is lower, in Rails' words", () => {
    const refusal = (runs: number, maxTests?: number) => {
      try {
        translateJudge0Submission({ source_code: 'print(1)', language_id: 71, number_of_runs: runs }, false, languages, undefined, maxTests);
        return undefined;
      } catch (error) {
        assert.ok(error instanceof Judge0ValidationError, String(error));
        return error.errors;
      }
    };
    assert.equal(refusal(3, 3), undefined);
    assert.deepEqual(refusal(4, 3), { number_of_runs: ['must be less than or equal to 3'] });
    assert.deepEqual(refusal(21, 50), { number_of_runs: ['must be less than or equal to 20'] });
    assert.equal(refusal(20, 50), undefined);
    assert.deepEqual(refusal(21), { number_of_runs: ['must be less than or equal to 20'] }, "Judge0's own bound where no server maximum is given");
  });
});

describe('judge0 submission serialization', () => {
  const attributes = (record: Parameters<typeof judge0Attributes>[0]) => judge0Attributes(record, languages);

  it('parses fields: defaults, *, a list, and Judge0\'s error for unknown names', () => {
    assert.deepEqual(parseFields(undefined), ['token', 'time', 'memory', 'stdout', 'stderr', 'compile_output', 'message', 'status']);
    assert.equal(parseFields('*').length, JUDGE0_ATTRIBUTES.length);
    assert.deepEqual(parseFields('stdout,status_id'), ['stdout', 'status_id']);
    assert.throws(() => parseFields('stdout,nope,worse'), (e: unknown) => e instanceof Judge0BadRequestError && e.message === 'invalid fields: [nope, worse]');
  });

  it('renders the default fields of an accepted run in Judge0 units', () => {
    const record = done({ run: stage({ stdout: 'hello, Judge0\n', cpuTimeMs: 1.4, peakMemoryBytes: 380 * 1024 }) });
    assert.deepEqual(serializeSubmission(attributes(record), parseFields(''), false), {
      token: 'job-1',
      time: '0.001',
      memory: 380,
      stdout: 'hello, Judge0\n',
      stderr: null,
      compile_output: null,
      message: null,
      status: { id: 3, description: 'Accepted' },
    });
  });

  it('encodes text as Ruby\'s Base64.encode64 does, message included', () => {
    const long = 'x'.repeat(50);
    const record = done({ run: stage({ verdict: 'runtime_error', exitCode: 1, stdout: long }) });
    const body = serializeSubmission(attributes(record), parseFields('stdout,message,exit_code,status_id'), true);
    assert.deepEqual(body, {
      stdout: `${'eHh4'.repeat(15)}\n${'eHh4'.repeat(1)}eHg=\n`,
      message: `${Buffer.from('Exited with error status 1').toString('base64')}\n`,
      exit_code: 1,
      status_id: 11,
    });
    assert.equal(rubyEncode64(new Uint8Array()), '');
  });

  it('refuses to send non-UTF-8 output as text', () => {
    const record = done({ run: { ...stage(), stdoutBase64: Buffer.from([0xfe, 0x0a]).toString('base64') } });
    assert.throws(() => serializeSubmission(attributes(record), parseFields(''), false), Judge0BadRequestError);
    assert.equal(serializeSubmission(attributes(record), parseFields('stdout'), true).stdout, '/go=\n');
  });

  it('reports a compile error with compile_output and nothing else', () => {
    const compile = stage({ verdict: 'runtime_error', exitCode: 1, stderr: "main.c:1:1: error: unknown type name 'x'\n" });
    const body = serializeSubmission(attributes(done({ verdict: 'compile_error', compile }, gcc)), parseFields('*'), false);
    assert.equal(body.status_id, 6);
    assert.equal(body.compile_output, "main.c:1:1: error: unknown type name 'x'\n");
    assert.deepEqual([body.time, body.memory, body.stdout, body.exit_code, body.message], [null, null, null, null, null]);
    assert.deepEqual(body.language, { id: 50, name: 'C (GCC 12.2.0)' });
    const slow = stage({ verdict: 'wall_time_limit', exitCode: null });
    const timedOut = serializeSubmission(attributes(done({ verdict: 'compile_error', compile: slow }, gcc)), parseFields('compile_output,status_id'), false);
    assert.deepEqual(timedOut, { compile_output: 'Compilation time limit exceeded.', status_id: 6 });
  });

  it("averages time and memory over the runs made, stopping at the first that is not accepted; wall_time is the last run's", () => {
    const tests = [
      stage({ passed: true, cpuTimeMs: 10, wallTimeMs: 20, peakMemoryBytes: 1000 * 1024, stdout: 'a\n' }),
      stage({ passed: false, cpuTimeMs: 20, wallTimeMs: 40, peakMemoryBytes: 2001 * 1024, stdout: 'b\n' }),
      stage({ passed: true, cpuTimeMs: 900, wallTimeMs: 900, peakMemoryBytes: 9000 * 1024, stdout: 'c\n' }),
    ];
    const body = serializeSubmission(attributes(done({ tests })), parseFields('time,wall_time,memory,stdout,status_id,number_of_runs'), false);
    assert.deepEqual(body, { time: '0.015', wall_time: '0.04', memory: 1500, stdout: 'b\n', status_id: 4, number_of_runs: 3 });
    // A job that stopped there itself (stopOnFailure) counts the runs it did not make.
    const stopped = serializeSubmission(attributes(done({ tests: tests.slice(0, 2), skippedTests: 1 })), parseFields('time,status_id,number_of_runs'), false);
    assert.deepEqual(stopped, { time: '0.015', status_id: 4, number_of_runs: 3 });
    // An average that is no round figure reads as Judge0's decimal column holds it: 15 significant digits.
    const thirds = [15, 16, 16].map((cpuTimeMs) => stage({ passed: true, cpuTimeMs, wallTimeMs: cpuTimeMs, stdout: 'a\n' }));
    const averaged = serializeSubmission(attributes(done({ tests: thirds })), parseFields('time'), false);
    assert.deepEqual(averaged, { time: '0.0156666666666667' });
  });

  it('reads a /v1 job with a judge program: its judgement as Accepted or Wrong Answer, a test it did not judge as Internal Error, its failed compile as the compile', () => {
    const read = (result: Parameters<typeof done>[0]) => serializeSubmission(attributes(done(result)), parseFields('status_id,message,compile_output'), false);
    const checker = (exitCode: number) => stage({ verdict: exitCode === 0 ? 'ok' : 'runtime_error', exitCode, stderr: 'judged\n' });
    assert.equal(read({ tests: [stage({ passed: true, checker: checker(0) })] }).status_id, 3);
    assert.equal(read({ tests: [stage({ passed: true, checker: checker(0) }), stage({ passed: false, checker: checker(1) })] }).status_id, 4);
    assert.deepEqual(read({ tests: [stage({ passed: null, checker: checker(3) })] }), {
      status_id: 13,
      message: 'the judge program judged nothing (exit 3)',
      compile_output: null,
    });
    assert.deepEqual(read({ tests: [stage({ passed: null, interactor: stage({ verdict: 'wall_time_limit', exitCode: null }) })] }), {
      status_id: 13,
      message: 'the judge program judged nothing (wall_time_limit)',
      compile_output: null,
    });
    const broken = stage({ verdict: 'runtime_error', exitCode: 1, stderr: 'checker.cpp:1: error\n' });
    assert.deepEqual(read({ verdict: 'compile_error', compile: stage(), checkerCompile: broken, failedCompile: 'checkerCompile' }), {
      status_id: 6,
      message: null,
      compile_output: 'checker.cpp:1: error\n',
    });
  });

  it('renders seconds as Rails renders a decimal column: no trailing zeros, one decimal at least', () => {
    assert.equal(judge0Seconds([1.4]), '0.001');
    assert.equal(judge0Seconds([170.2]), '0.17');
    assert.equal(judge0Seconds([0.3]), '0.0');
    assert.equal(judge0Seconds([1000]), '1.0');
    assert.equal(judge0Seconds([12, 13]), '0.0125');
    assert.equal(judge0Seconds([1, 2, 2]), '0.00166666666666667', 'Float::DIG significant digits');
  });

  it('reports queued, running and failed jobs as 1, 2 and 13', () => {
    const base = { id: 't', createdAt: '2026-11-23T09:00:00.000Z' };
    const status = (record: Parameters<typeof judge0Attributes>[0]) => serializeSubmission(attributes(record), parseFields('status,message'), false);
    assert.deepEqual(status({ ...base, status: 'queued' }), { status: { id: 1, description: 'In Queue' }, message: null });
    assert.deepEqual(status({ ...base, status: 'running' }), { status: { id: 2, description: 'Processing' }, message: null });
    assert.deepEqual(status({ ...base, status: 'failed', failure: { code: 'stalled', message: 'worker died' } }), {
      status: { id: 13, description: 'Internal Error' },
      message: 'worker died',
    });
  });
});

describe('judge0 submission read back', () => {
  const queued = (request: JobRequest): JobRecord => ({ id: 'job-2', status: 'queued', createdAt: '2026-11-23T09:00:00.000Z', request });
  const requestFields = [
    'source_code', 'language_id', 'language', 'stdin', 'expected_output', 'number_of_runs', 'cpu_time_limit', 'cpu_extra_time',
    'wall_time_limit', 'memory_limit', 'stack_limit', 'max_processes_and_or_threads', 'max_file_size', 'compiler_options',
    'command_line_arguments', 'callback_url', 'additional_files', 'redirect_stderr_to_stdout', 'enable_network',
    'enable_per_process_and_thread_time_limit', 'enable_per_process_and_thread_memory_limit',
  ].join(',');
  const readBack = (record: JobRecord, base64 = false) =>
    serializeSubmission(judge0Attributes(record, languages), parseFields(requestFields), base64);

  it('answers with what was submitted, before the job runs: the alias id, text, limits in seconds and KB', () => {
    const { request } = translateJudge0Submission(
      {
        source_code: 'print(input())',
        language_id: '92',
        stdin: 'Judge0',
        expected_output: 'Judge0\n',
        number_of_runs: 2,
        cpu_time_limit: 1.5,
        wall_time_limit: 4,
        memory_limit: 128000,
        max_processes_and_or_threads: 30,
        cpu_extra_time: 0.5,
        command_line_arguments: 'a  b;rm c',
        callback_url: 'http://127.0.0.1:9/done',
      },
      false,
      languages,
    );
    assert.deepEqual(readBack(queued(request)), {
      source_code: 'print(input())',
      language_id: 92,
      language: { id: 92, name: 'Python (3.11.2)' },
      stdin: 'Judge0',
      expected_output: 'Judge0\n',
      number_of_runs: 2,
      cpu_time_limit: '1.5',
      cpu_extra_time: '0.5',
      wall_time_limit: '4.0',
      memory_limit: 128000,
      // Not submitted: the runtime's defaults (fixtures: 8 MiB stack, 1 MiB files), as Judge0's set_defaults fills its own.
      stack_limit: 8192,
      max_processes_and_or_threads: 30,
      max_file_size: 1024,
      compiler_options: null,
      command_line_arguments: 'a  b;rm c',
      callback_url: 'http://127.0.0.1:9/done',
      additional_files: null,
      redirect_stderr_to_stdout: false,
      enable_network: false,
      enable_per_process_and_thread_time_limit: false,
      enable_per_process_and_thread_memory_limit: false,
    });
  });

  it('keeps the bytes of base64 text, and 0 ("no limit") reads back as the maximum it stood for', () => {
    const bytes = Buffer.from([0xfe, 0xff, 0x0a]);
    const { request } = translateJudge0Submission(
      { source_code: Buffer.from('print(1)').toString('base64'), language_id: 71, expected_output: bytes.toString('base64'), cpu_time_limit: 0 },
      true,
      languages,
    );
    const body = readBack(queued(request), true);
    assert.equal(body.expected_output, '/v8K\n');
    assert.equal(body.source_code, `${Buffer.from('print(1)').toString('base64')}\n`);
    assert.equal(body.stdin, null);
    assert.equal(body.cpu_time_limit, '10.0', 'the fixtures\' maximum');
    assert.equal(body.cpu_extra_time, '0.0', 'not submitted: none is applied');
    assert.equal(body.command_line_arguments, null);
    assert.throws(() => readBack(queued(request)), Judge0BadRequestError, 'expected output that is not UTF-8 needs base64_encoded');
    // Without the front's attributes (a job queued by another front), from the tests' bytes.
    assert.equal(readBack(queued({ ...request, front: undefined }), true).expected_output, '/v8K\n');
  });

  it('reads back the wall time limit a CPU time limit given alone raised with it', () => {
    const limitsOf = (params: object) => {
      const { request } = translateJudge0Submission({ source_code: 'print(1)', language_id: 71, ...params }, false, languages);
      const body = readBack(queued(request));
      return [body.cpu_time_limit, body.wall_time_limit];
    };
    // The fixtures' defaults are 3 s of CPU time and 5 s of wall time, their maxima 10 s and 20 s.
    assert.deepEqual(limitsOf({ cpu_time_limit: 8 }), ['8.0', '13.334']);
    assert.deepEqual(limitsOf({ cpu_time_limit: 1 }), ['1.0', '5.0'], 'a lower one keeps the default');
    assert.deepEqual(limitsOf({ cpu_time_limit: 8, wall_time_limit: 9 }), ['8.0', '9.0'], 'a wall time limit given is kept');
    assert.deepEqual(limitsOf({ cpu_time_limit: 0 }), ['10.0', '16.667'], '"no limit": the maximum CPU time, and the wall time for it');
  });

  it('reads compiler_options back as submitted, and redirect_stderr_to_stdout as it applies', () => {
    const { request } = translateJudge0Submission(
      { source_code: 'int main(){}', language_id: 50, compiler_options: ' -O0  -DX;y ', redirect_stderr_to_stdout: 'yes' },
      false,
      languages,
    );
    const body = readBack(queued(request));
    assert.deepEqual([body.compiler_options, body.redirect_stderr_to_stdout, body.additional_files], [' -O0  -DX;y ', true, null]);
    const zipBase64 = Buffer.from('the zip').toString('base64');
    const withFiles = translateJudge0Submission({ source_code: 'int main(){}', language_id: 50, additional_files: zipBase64 }, false, languages, { zipBase64, files: [], unpackedBytes: 0 });
    assert.equal(readBack(queued(withFiles.request)).additional_files, zipBase64, 'base64, whatever base64_encoded says');
  });

  it('reads a job submitted elsewhere (/v1) from its JobRequest alone', () => {
    const request: JobRequest = {
      runtimeId: 'c',
      files: [{ name: 'main.c', contentBase64: Buffer.from('int main(){}').toString('base64') }],
      stdinBase64: '',
      args: ['-v', 'x'],
      compileArgs: ['-O0', '-DX'],
      limits: { memoryBytes: 64 * MiB },
      tests: [{ stdinBase64: '', expectedOutput: 'ok' }],
    };
    const body = readBack({ ...done({ run: stage() }, gcc), request });
    assert.equal(body.language_id, 50);
    assert.deepEqual(body.language, { id: 50, name: 'C (GCC 12.2.0)' });
    assert.equal(body.source_code, 'int main(){}');
    assert.equal(body.expected_output, 'ok');
    assert.equal(body.command_line_arguments, '-v x');
    assert.equal(body.compiler_options, '-O0 -DX');
    assert.equal(body.memory_limit, 65536);
    assert.equal(body.cpu_time_limit, '3.0');
    assert.equal(body.number_of_runs, 1);
  });

  it('reads a stored job whose limits no worker takes (an older version queued a 0 ms CPU limit) without its limits', () => {
    const request: JobRequest = {
      runtimeId: 'python',
      files: [{ name: 'main.py', contentBase64: Buffer.from('print(1)').toString('base64') }],
      stdinBase64: '',
      args: [],
      limits: { cpuTimeMs: 0 },
    };
    const body = readBack(queued(request));
    assert.equal(body.source_code, 'print(1)');
    assert.equal(body.language_id, 71);
    assert.equal(body.cpu_time_limit ?? null, null);
  });
});
