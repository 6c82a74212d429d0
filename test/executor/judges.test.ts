// Judge programs on the real engine, pool and busybox image. Interactive jobs: the program and its
// interactor connected in every test, the interactor's judgement as `passed`, its compile, the
// files each test gives it. Checked jobs: the checker on each ok run's output. The requests
// refused, and nothing left behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Executor } from '../../src/executor/executor.js';
import type { ExecuteRequest, JudgeProgramRequest } from '../../src/executor/types.js';
import type { Runtime } from '../../src/images/types.js';
import { checkJudgeProgram } from '../../src/executor/check.js';
import { ExecutorError } from '../../src/executor/errors.js';
import { testlibJudgement } from '../../src/executor/verdict.js';
import { mountsMentioning } from '../pool/helpers.js';
import { childPids } from '../helpers/processes.js';
import { until } from '../helpers/until.js';
import { BUILD, cgroupDirsUnder, dataDir, descendants, executorSkipReason, SH, SHC } from './helpers.js';
import { MiB } from '../../src/units.js';
import { DEFAULT_JUDGE_COMPILE_CACHE_BYTES } from '../../src/config.js';

const skip = executorSkipReason(['busybox']);
/** BUILD whose run prints the file `nonce` that its compile left (on stderr: a checker's). */
const NONCE_BUILD: Runtime = { ...BUILD, id: 'nonce', run: { argv: ['/bin/sh', '-c', 'cat nonce >&2'] } };
let executor: Executor;
let stateRoot: string;
const instanceId = `judgestest-${process.pid}`;
const backgroundErrors: unknown[] = [];
let baseline = new Set<number>();

before(async () => {
  if (skip) return;
  const { createExecutor } = await import('../../src/executor/create.js');
  baseline = new Set(descendants());
  stateRoot = mkdtempSync(join(tmpdir(), 'cellblock-judges-test-'));
  executor = await createExecutor({
    dataDir,
    runtimes: [SH, SHC, BUILD, NONCE_BUILD],
    pool: { stateRoot, sizing: { minReady: 1, maxReady: 3 }, warmImages: ['busybox'] },
    sandbox: { instanceId },
    onBackgroundError: (err) => backgroundErrors.push(err),
    maxJobOutputBytes: 16 * MiB,
    judgeCompileCacheBytes: DEFAULT_JUDGE_COMPILE_CACHE_BYTES,
  });
});

after(async () => {
  if (skip) return;
  await executor.close();
  assert.deepEqual(mountsMentioning(stateRoot), [], 'no mounts left');
  assert.deepEqual(cgroupDirsUnder(`cellblock/${instanceId}`), [], 'no cgroups left');
  assert.deepEqual(descendants().filter((pid) => !baseline.has(pid)), [], 'no processes left');
  rmSync(stateRoot, { recursive: true, force: true });
  assert.deepEqual(backgroundErrors, []);
});

/** Reads the number in input.txt, asks the program for its double, and judges the answer against
 * answer.txt when there is one (testlib's exit codes: 0 right, 1 wrong); says so on stderr. */
const DOUBLING_INTERACTOR = [
  'read n < "$1"',
  'echo "$n"',
  'read answer || { echo "no answer" >&2; exit 1; }',
  'if [ -n "$3" ]; then read expected < "$3"; else expected=$((n * 2)); fi',
  '[ "$answer" = "$expected" ] && { echo "ok $answer" >&2; exit 0; }',
  'echo "wrong: $answer, expected $expected" >&2; exit 1',
  '',
].join('\n');

/** The job is refused before anything runs, with an ExecutorError saying `pattern`. */
const refused = async (request: ExecuteRequest, pattern: RegExp) => {
  await assert.rejects(executor.execute(request), (error: unknown) => {
    assert.ok(error instanceof ExecutorError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
};

const judgeProgram = (source: string, extra: Partial<JudgeProgramRequest> = {}): JudgeProgramRequest => ({
  runtimeId: 'shc',
  files: [{ name: 'judge.sh', content: Buffer.from(source) }],
  ...extra,
});

const job = (solution: string, extra: Partial<ExecuteRequest> = {}): ExecuteRequest => ({
  runtimeId: 'sh',
  files: [{ name: 'main.sh', content: Buffer.from(solution) }],
  interactor: judgeProgram(DOUBLING_INTERACTOR),
  tests: [{ stdin: '21\n', expectedOutput: '42\n' }, { stdin: '5\n' }],
  ...extra,
});

test('the program and its compiled interactor talk through pipes; the interactor judges each test', { skip }, async () => {
  const r = await executor.execute(job('read n; echo $((n * 2)); ls /box >&2'));
  assert.equal(r.verdict, 'ok');
  assert.equal(r.interactorCompile?.verdict, 'ok', r.interactorCompile?.stderr.toString());
  assert.deepEqual(r.tests!.map((t) => [t.verdict, t.passed]), [['ok', true], ['ok', true]]);
  assert.deepEqual(r.tests!.map((t) => t.interactor!.stderr.toString()), ['ok 42\n', 'ok 10\n']);
  assert.deepEqual(r.tests!.map((t) => t.interactor!.exitCode), [0, 0]);
  // The program's stdout went to the interactor; the program's work dir holds its own files only.
  assert.deepEqual(r.tests!.map((t) => t.stdout.length), [0, 0]);
  assert.equal(r.tests![0]!.stderr.toString(), 'main.sh\n');
});

test("an interactive test's two runs take roots kept for connected runs, not pre-warmed containers", { skip }, async () => {
  const takes = (key: string) => {
    const figures = executor.stats().images[key];
    return figures ? figures.hits + figures.misses : 0;
  };
  const [runs, connected] = [takes('busybox'), takes('busybox:connected')];
  const r = await executor.execute(job('read n; echo $((n * 2))'));
  assert.deepEqual(r.tests!.map((t) => t.passed), [true, true]);
  assert.equal(takes('busybox:connected') - connected, 4, 'two tests, two runs each');
  assert.equal(takes('busybox') - runs, 0, 'no pre-warmed run container taken (and torn down unused)');
  // The roots kept ready for connected runs hold no container: the inits alive (this process's
  // children but the mount agent) are those of the other keys' ready slots.
  const ready = (key: string) => executor.stats().images[key]?.ready ?? 0;
  const cmdline = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return 'gone';
    }
  };
  const inits = () => childPids().filter((pid) => !baseline.has(pid) && !/mount-agent|^gone$/.test(cmdline(pid)));
  const settled = () => Object.values(executor.stats().images).every((figures) => figures.preparing === 0 && figures.retiring === 0 && figures.ready >= figures.target);
  await until(() => settled() && ready('busybox:connected') >= 1 && inits().length === ready('busybox') + ready('busybox:compile'), 10_000, 10, 'as many inits as ready slots of the keys with containers');
});

test('a wrong answer is passed: false with the interactor\'s message; its own failure (exit 3) judges nothing', { skip }, async () => {
  const wrong = await executor.execute(job('read n; echo $((n + 1))'));
  assert.equal(wrong.verdict, 'ok', 'a wrong answer is `passed: false`, not a verdict');
  assert.deepEqual(wrong.tests!.map((t) => t.passed), [false, false]);
  assert.equal(wrong.tests![0]!.interactor!.stderr.toString(), 'wrong: 22, expected 42\n');
  const failing = await executor.execute(job('read n; echo $((n * 2))', { interactor: judgeProgram('echo "bad test" >&2; exit 3\n') }));
  assert.deepEqual(failing.tests!.map((t) => [t.passed, t.interactor!.exitCode]), [[null, 3], [null, 3]]);
});

test('a program killed by SIGPIPE, writing after its interactor judged, is ok: the judgement says how it did', { skip }, async () => {
  const right = await executor.execute(job('read n; while :; do echo $((n * 2)); done'));
  assert.deepEqual(right.tests!.map((t) => [t.verdict, t.signalName, t.passed]), [['ok', 'SIGPIPE', true], ['ok', 'SIGPIPE', true]]);
  assert.equal(right.verdict, 'ok');
  const wrong = await executor.execute(job('while :; do echo 1; done'));
  assert.deepEqual(wrong.tests!.map((t) => [t.verdict, t.passed]), [['ok', false], ['ok', false]]);
  // An interactor that ends without judging (testlib's "fail") leaves nothing judged, and the
  // program that writes after it is not blamed either.
  const failed = await executor.execute(job('while :; do echo 1; done', { interactor: judgeProgram('exit 3\n'), tests: [{ stdin: '1\n' }] }));
  assert.deepEqual(failed.tests!.map((t) => [t.verdict, t.signalName, t.passed]), [['ok', 'SIGPIPE', null]]);
});

test('an interactor writing to a program that has ended gets EPIPE, not SIGPIPE, and judges it', { skip }, async () => {
  const r = await executor.execute(
    job('exit 0', { interactor: judgeProgram('read n < "$1"; sleep 0.2; echo "$n" || { echo "gone" >&2; exit 1; }; exit 0\n'), tests: [{ stdin: '1\n' }] }),
  );
  assert.deepEqual([r.tests![0]!.verdict, r.tests![0]!.passed, r.tests![0]!.interactor!.exitCode], ['ok', false, 1]);
  assert.match(r.tests![0]!.interactor!.stderr.toString(), /gone\n$/);
});

test('the program\'s own limits stay its verdict; its interactor sees end of file', { skip }, async () => {
  const r = await executor.execute(job('read n; while :; do :; done', { limits: { cpuTimeMs: 200 }, tests: [{ stdin: '4\n' }] }));
  assert.equal(r.verdict, 'cpu_time_limit');
  assert.deepEqual([r.tests![0]!.passed, r.tests![0]!.interactor!.stderr.toString()], [false, 'no answer\n']);
  assert.ok(r.tests![0]!.interactor!.metrics.wallTimeMs < 2000, 'end of file as the program was killed, not the wall limit');
});

test('an interactor that does not compile is compile_error, and nothing runs', { skip }, async () => {
  const r = await executor.execute(job('read n; echo $((n * 2))', { interactor: judgeProgram('if then fi (\n') }));
  assert.equal(r.verdict, 'compile_error');
  assert.equal(r.failedCompile, 'interactorCompile');
  assert.notEqual(r.interactorCompile!.verdict, 'ok');
  assert.equal(r.tests, undefined);
});

test('a test\'s files replace what the interactor\'s compile left under their names, never through a link', { skip }, async () => {
  const outside = join(stateRoot, 'outside.txt');
  writeFileSync(outside, 'keep\n');
  // BUILD's compile runs the script; its run counts the files in the work dir, and prints them.
  const r = await executor.execute(
    job('read count; echo "$count" >&2', {
      interactor: { runtimeId: 'build', files: [{ name: 'build.sh', content: Buffer.from(`ln -s ${outside} input.txt; mkdir answer.txt\n`) }] },
      tests: [{ stdin: 'overwritten\n', expectedOutput: '1\n' }],
    }),
  );
  assert.equal(r.interactorCompile?.verdict, 'ok', r.interactorCompile?.stderr.toString());
  assert.equal(readFileSync(outside, 'utf8'), 'keep\n', 'the host file the link named is untouched');
  // build.sh, input.txt and answer.txt: both now plain files.
  assert.equal(r.tests![0]!.stderr.toString(), '3\n');
  assert.equal(r.tests![0]!.interactor!.verdict, 'ok');
  // Nothing the compile left under the three names reaches a test that does not give them.
  const stale = await executor.execute(
    job('read count; echo "$count" >&2', {
      interactor: { runtimeId: 'build', files: [{ name: 'build.sh', content: Buffer.from('mkdir output.txt; echo stale > answer.txt\n') }] },
      tests: [{ stdin: 'x\n' }],
    }),
  );
  assert.equal(stale.tests![0]!.stderr.toString(), '2\n', 'build.sh and input.txt');
});

test('an interactor compile that leaves more than a test\'s work dir holds is compile_error, told in its own stderr', { skip }, async () => {
  const r = await executor.execute(
    job('true', {
      interactor: {
        runtimeId: 'build',
        files: [{ name: 'build.sh', content: Buffer.from('head -c 4194304 /dev/zero > big || exit 1; i=0; while [ $i -lt 70 ]; do ln big l$i || exit 1; i=$((i+1)); done\n') }],
      },
    }),
  );
  assert.equal(r.verdict, 'compile_error');
  assert.equal(r.compile, undefined, 'the program (sh) compiles nothing, and is not blamed');
  assert.equal(r.failedCompile, 'interactorCompile');
  assert.match(r.interactorCompile!.stderr.toString(), /^cellblock: the compile's files are more than 134217728 bytes/m);
  assert.equal(r.tests, undefined);
  // As /v1 shows it: the interactor's compile decided the job.
  const { presentResult } = await import('../../src/api/present.js');
  const { toJobResult } = await import('../../src/queue/codec.js');
  assert.match(presentResult(toJobResult(r, 0), 'utf8').stderr, /^cellblock: the compile's files are more than/m);
  // A compile that leaves the work dir without a free inode: the test's input.txt has no room.
  const full = await executor.execute(
    job('true', {
      interactor: { runtimeId: 'build', files: [{ name: 'build.sh', content: Buffer.from('i=0; while true 2>/dev/null > f$i; do i=$((i+1)); done; true\n') }] },
    }),
  );
  assert.equal(full.interactorCompile!.verdict, 'ok', full.interactorCompile!.stderr.toString());
  assert.deepEqual([full.verdict, full.failedCompile], ['compile_error', 'interactorCompile']);
  assert.match(full.interactorCompile!.stderr.toString(), /cellblock: the test's files could not be written beside the compile's in the run's work dir \(ENOSPC\)/);
});

test('testlib\'s exit codes: 0 accepts; 1, 2, 4 and 8 reject; 3, 7, a signal or a limit judge nothing', () => {
  const judged = (verdict: 'ok' | 'runtime_error' | 'signaled' | 'wall_time_limit', exitCode: number | null) => testlibJudgement({ verdict, exitCode });
  assert.equal(judged('ok', 0), true);
  assert.deepEqual([1, 2, 4, 8].map((code) => judged('runtime_error', code)), [false, false, false, false]);
  assert.deepEqual([3, 7, 5].map((code) => judged('runtime_error', code)), [null, null, null]);
  assert.equal(judged('signaled', null), null);
  assert.equal(judged('wall_time_limit', null), null);
});

test('an interactor gets at least the program\'s wall time, up to its maximum, unless its limits name one', () => {
  const wall = (programWallTimeMs: number, limits?: { wallTimeMs: number }) =>
    checkJudgeProgram('interactor', SHC, { files: [{ name: 'judge.sh' }], ...(limits ? { limits } : {}) }, 1, programWallTimeMs).runLimits.wallTimeMs;
  assert.equal(wall(8000), 9000, 'the program\'s and a second more');
  assert.equal(wall(1000), 5000, 'its own default when that is longer');
  assert.equal(wall(60_000), 20_000, 'its runtime\'s maximum');
  assert.equal(wall(8000, { wallTimeMs: 700 }), 700);
});

test('refused before anything runs: no tests, stdin, stderrToStdout, a reserved file name, an unknown runtime', { skip }, async () => {
  const { tests: _tests, ...withoutTests } = job('true');
  await refused(withoutTests, /an interactor judges tests/);
  await refused(job('true', { stdin: 'x' }), /stdin is its interactor's output/);
  await refused(job('true', { stderrToStdout: true }), /stderrToStdout does not apply/);
  await refused(job('true', { interactor: { runtimeId: 'sh', files: [{ name: 'input.txt', content: Buffer.from('') }] } }), /interactor file "input.txt"/);
  await refused(job('true', { interactor: { runtimeId: 'sh', files: [{ name: 'j.sh', content: Buffer.from('') }, { name: 'answer.txt/data', content: Buffer.from('') }] } }), /interactor file "answer.txt\/data"/);
  await refused(job('true', { interactor: { runtimeId: 'sh', files: [{ name: './output.txt', content: Buffer.from('') }] } }), /interactor file "\.\/output.txt"/);
  await refused(job('true', { interactor: judgeProgram('exit 0', { runtimeId: 'cobol' }) }), /unknown interactor runtime "cobol"/);
});

// ---- checkers

/** Accepts any divisor of the number in input.txt other than 1 and itself (a problem with many
 * right answers), whatever answer.txt says; says why on stderr. */
const DIVISOR_CHECKER = [
  'read n < "$1"',
  'd=$(cat "$2")',
  'if [ "$d" -gt 1 ] 2>/dev/null && [ "$d" -lt "$n" ] && [ $((n % d)) -eq 0 ]; then echo "ok: $d divides $n" >&2; exit 0; fi',
  'echo "wrong: $d" >&2',
  'exit 1',
  '',
].join('\n');

const SMALLEST_DIVISOR = 'read n; d=2; while [ $((n % d)) -ne 0 ]; do d=$((d + 1)); done; echo $d\n';

const checked = (solution: string, extra: Partial<ExecuteRequest> = {}): ExecuteRequest => ({
  runtimeId: 'sh',
  files: [{ name: 'main.sh', content: Buffer.from(solution) }],
  checker: judgeProgram(DIVISOR_CHECKER),
  tests: [{ stdin: '15\n', expectedOutput: '5\n' }, { stdin: '49\n' }, { stdin: '13\n' }],
  ...extra,
});

test('a checker judges each test on the program\'s output, in place of comparing it with the expected output', { skip }, async () => {
  const r = await executor.execute(checked(SMALLEST_DIVISOR));
  assert.equal(r.checkerCompile?.verdict, 'ok', r.checkerCompile?.stderr.toString());
  assert.equal(r.verdict, 'ok');
  // 3 is not the expected 5, but a divisor all the same; 13 has none.
  assert.deepEqual(r.tests!.map((t) => [t.stdout.toString(), t.passed]), [['3\n', true], ['7\n', true], ['13\n', false]]);
  assert.deepEqual(r.tests!.map((t) => t.checker!.stderr.toString()), ['ok: 3 divides 15\n', 'ok: 7 divides 49\n', 'wrong: 13\n']);
  assert.equal(r.tests![0]!.interactor, undefined);
});

test('stopOnFailure: a test its checker or its interactor judges wrong is the last run', { skip }, async () => {
  const r = await executor.execute(checked(SMALLEST_DIVISOR, { stopOnFailure: true, tests: [{ stdin: '15\n' }, { stdin: '13\n' }, { stdin: '49\n' }] }));
  assert.deepEqual([r.tests!.map((t) => t.passed), r.skippedTests, r.verdict], [[true, false], 1, 'ok']);
  const interactive = await executor.execute(job('read n; echo $((n + 1))', { stopOnFailure: true }));
  assert.deepEqual([interactive.tests!.map((t) => t.passed), interactive.skippedTests], [[false], 1]);
});

test('a checker gets the test\'s input, the program\'s output and the expected output (empty when none) as its files', { skip }, async () => {
  const echo = 'for f in "$@"; do printf "%s=" "$f" >&2; tr "\\n" "|" < "$f" >&2; echo >&2; done; exit 0\n';
  const r = await executor.execute(checked('read x; echo "got $x"', { checker: judgeProgram(echo), tests: [{ stdin: 'a\n', expectedOutput: 'want\n' }, { stdin: 'b\n' }] }));
  assert.deepEqual(
    r.tests!.map((t) => t.checker!.stderr.toString()),
    ['input.txt=a|\noutput.txt=got a|\nanswer.txt=want|\n', 'input.txt=b|\noutput.txt=got b|\nanswer.txt=\n'],
  );
});

test('a run that is not ok is not checked (passed null); a checker that fails or does not compile judges nothing', { skip }, async () => {
  const crashed = await executor.execute(checked('exit 3', { tests: [{ stdin: '15\n' }] }));
  assert.deepEqual([crashed.verdict, crashed.tests![0]!.passed, crashed.tests![0]!.checker], ['runtime_error', null, undefined]);
  const failing = await executor.execute(checked(SMALLEST_DIVISOR, { checker: judgeProgram('echo "bad test" >&2; exit 3\n'), tests: [{ stdin: '15\n' }] }));
  assert.deepEqual([failing.verdict, failing.tests![0]!.passed, failing.tests![0]!.checker!.exitCode], ['ok', null, 3]);
  const broken = await executor.execute(checked(SMALLEST_DIVISOR, { checker: judgeProgram('if then fi (\n') }));
  assert.deepEqual([broken.verdict, broken.failedCompile, broken.tests], ['compile_error', 'checkerCompile', undefined]);
  // As /v1 shows it: the checker's compile decided the job.
  const { presentResult } = await import('../../src/api/present.js');
  const { toJobResult } = await import('../../src/queue/codec.js');
  const view = presentResult(toJobResult(broken, 0), 'utf8');
  assert.deepEqual([view.failedCompile, view.exitCode, view.stderr], ['checkerCompile', broken.checkerCompile!.exitCode, broken.checkerCompile!.stderr.toString()]);
  assert.notEqual(view.exitCode, 0);
  // A last run that is not ok leaves the checker's compile slot to the job's end (after() checks nothing is left).
  const lastCrashed = await executor.execute(checked('read n; [ "$n" = 15 ] && echo 3 || exit 4', { tests: [{ stdin: '15\n' }, { stdin: '9\n' }] }));
  assert.deepEqual(lastCrashed.tests!.map((t) => [t.verdict, t.passed]), [['ok', true], ['runtime_error', null]]);
});

test('a checker\'s compile that plants a link at output.txt does not make the host write through it', { skip }, async () => {
  const outside = join(stateRoot, 'checker-outside.txt');
  writeFileSync(outside, 'keep\n');
  const r = await executor.execute(
    checked('echo 3', {
      checker: { runtimeId: 'build', files: [{ name: 'build.sh', content: Buffer.from(`ln -s ${outside} output.txt\n`) }] },
      tests: [{ stdin: '15\n' }],
    }),
  );
  assert.equal(r.checkerCompile?.verdict, 'ok', r.checkerCompile?.stderr.toString());
  assert.equal(readFileSync(outside, 'utf8'), 'keep\n', 'the host file the link named is untouched');
  // BUILD's run counts the files: build.sh and the three test files.
  assert.equal(r.tests![0]!.checker!.stdout.toString(), '4\n');
});

test('a checker is refused without tests, beside an interactor, or with a file of a test file\'s name', { skip }, async () => {
  const { tests: _tests, ...withoutTests } = checked('true');
  await refused(withoutTests, /a checker judges tests/);
  await refused(checked('true', { interactor: judgeProgram(DOUBLING_INTERACTOR) }), /a checker does not apply to an interactive job/);
  await refused(checked('true', { checker: { runtimeId: 'sh', files: [{ name: 'output.txt', content: Buffer.from('') }] } }), /checker file "output.txt"/);
  await refused(checked('true', { checker: judgeProgram('exit 0', { runtimeId: 'cobol' }) }), /unknown checker runtime "cobol"/);
});

test('a judge program\'s compile is kept: a later job sending the same one starts from its work dir and does not compile it', { skip }, async () => {
  /** A checker whose compile leaves random bytes in `nonce`, and whose run prints them. */
  const nonceChecker = (build = 'head -c 8 /dev/urandom | od -An -tx1 > nonce\n', extra: Partial<JudgeProgramRequest> = {}): JudgeProgramRequest => ({
    runtimeId: 'nonce',
    files: [{ name: 'build.sh', content: Buffer.from(build) }],
    ...extra,
  });
  const run = (checker: JudgeProgramRequest) => executor.execute(checked('echo 3', { checker, tests: [{ stdin: '15\n' }, { stdin: '9\n' }] }));
  const noncesOf = (r: Awaited<ReturnType<typeof run>>) => r.tests!.map((t) => t.checker!.stderr.toString());

  const first = await run(nonceChecker());
  assert.equal(first.checkerCompile?.verdict, 'ok', first.checkerCompile?.stderr.toString());
  assert.equal(first.checkerCompile!.cached, undefined);
  const [nonce] = noncesOf(first);
  assert.match(nonce!, /[0-9a-f]{2}/);
  assert.deepEqual(noncesOf(first), [nonce, nonce]);
  const second = await run(nonceChecker());
  const { cached, ...compile } = second.checkerCompile!;
  assert.equal(cached, true);
  assert.deepEqual(compile, first.checkerCompile, 'the compile\'s own result, its metrics among them');
  assert.deepEqual(noncesOf(second), [nonce, nonce], 'the tests start from the kept work dir');
  assert.deepEqual(second.tests!.map((t) => t.passed), [true, true]);
  const { presentResult } = await import('../../src/api/present.js');
  const { toJobResult } = await import('../../src/queue/codec.js');
  assert.equal(presentResult(toJobResult(second, 0), 'utf8').checkerCompile!.cached, true, 'as /v1 shows it');
  assert.equal(presentResult(toJobResult(first, 0), 'utf8').checkerCompile!.cached, undefined);

  // Another file's content or other compile limits are another compile.
  for (const other of [nonceChecker('head -c 8 /dev/urandom | od -An -tx1 > nonce # edited\n'), nonceChecker(undefined, { compileLimits: { cpuTimeMs: 1500 } })]) {
    const r = await run(other);
    assert.equal(r.checkerCompile!.cached, undefined);
    assert.notEqual(noncesOf(r)[0], nonce);
  }
  // A compile that failed is compiled again.
  const broken = nonceChecker('echo broken >&2; exit 1\n');
  assert.deepEqual((await run(broken)).checkerCompile!.stderr.toString(), 'broken\n');
  const again = await run(broken);
  assert.deepEqual([again.verdict, again.checkerCompile!.cached], ['compile_error', undefined]);

  // Two jobs at once with a checker not kept yet: one compiles it, the other waits for that compile
  // and starts from what it kept.
  const fresh = nonceChecker('head -c 8 /dev/urandom | od -An -tx1 > nonce # at once\n');
  const waits = executor.judgeCompileStats()!.waits;
  const [one, two] = await Promise.all([run(fresh), run(fresh)]);
  assert.equal(executor.judgeCompileStats()!.waits, waits + 1);
  assert.deepEqual([one, two].map((r) => r.checkerCompile!.cached === true).sort(), [false, true]);
  assert.equal(noncesOf(one)[0], noncesOf(two)[0]);
  assert.notEqual(noncesOf(one)[0], nonce);

  // An interactor's too.
  const interactor = judgeProgram(`${DOUBLING_INTERACTOR}# kept\n`);
  const interactive = await executor.execute(job('read n; echo $((n * 2))', { interactor }));
  const keptInteractive = await executor.execute(job('read n; echo $((n * 2))', { interactor }));
  assert.deepEqual([interactive.interactorCompile!.cached, keptInteractive.interactorCompile!.cached], [undefined, true]);
  assert.deepEqual(keptInteractive.tests!.map((t) => t.passed), [true, true]);
});
