// The executor end to end on the real engine, pool and images: verdicts, compile once and run per
// test in fresh roots, isolation between jobs, cancellation, and no leftovers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Executor } from '../../src/executor/executor.js';
import type { ExecuteRequest } from '../../src/executor/types.js';
import { mountsMentioning } from '../pool/helpers.js';
import { BUILD, cgroupDirsUnder, dataDir, descendants, executorSkipReason, openNamespaceFds, SH, SHC, TRUE } from './helpers.js';
import { MiB } from '../../src/units.js';
import { childPids, initOfProgram } from '../helpers/processes.js';
import { until } from '../helpers/until.js';

const skip = executorSkipReason(['busybox']);
let executor: Executor;
let stateRoot: string;
const instanceId = `exectest-${process.pid}`;
const cgroupsOfInstance = () => cgroupDirsUnder(`cellblock/${instanceId}`);
const backgroundErrors: unknown[] = [];
/** Descendants that are not the executor's (tsx's esbuild service): taken before it starts. */
let baseline = new Set<number>();
const ourDescendants = () => descendants().filter((pid) => !baseline.has(pid));

before(async () => {
  if (skip) return;
  // Imported here: loading the engine needs its addon, which the skip reason checked.
  const { createExecutor } = await import('../../src/executor/create.js');
  baseline = new Set(descendants());
  stateRoot = mkdtempSync(join(tmpdir(), 'cellblock-executor-test-'));
  executor = await createExecutor({
    dataDir,
    runtimes: [SH, SHC, TRUE, BUILD],
    pool: { stateRoot, sizing: { minReady: 1, maxReady: 3 }, warmImages: ['busybox'] },
    sandbox: { instanceId },
    onBackgroundError: (err) => backgroundErrors.push(err),
    maxJobOutputBytes: 8 * MiB, // eight runs at the runtimes' 1 MiB (the tests below run at most four)
  });
});

after(async () => {
  if (skip) return;
  await executor.close();
  assert.deepEqual(mountsMentioning(stateRoot), [], 'no mounts left');
  assert.deepEqual(cgroupsOfInstance(), [], 'no cgroups left');
  assert.deepEqual(ourDescendants(), [], 'no processes left');
  rmSync(stateRoot, { recursive: true, force: true });
  assert.deepEqual(backgroundErrors, []);
});

const sh = (source: string, extra: Partial<ExecuteRequest> = {}): ExecuteRequest => ({
  runtimeId: 'sh',
  files: [{ name: 'main.sh', content: Buffer.from(source) }],
  ...extra,
});

test('hello world: ok, stdout, metrics; runs as the sandbox user in /box', { skip }, async () => {
  const r = await executor.execute(sh('echo "Hello, World!"; id -u; pwd; ls -ln /box/main.sh | cut -c1-30', { args: ['a b'] }));
  assert.equal(r.verdict, 'ok', JSON.stringify(r.run?.error));
  assert.deepEqual(r.runtime, { id: 'sh', language: 'sh', version: '1' });
  const lines = r.run!.stdout.toString().split('\n');
  assert.equal(lines[0], 'Hello, World!');
  const uid = Number(lines[1]);
  assert.ok(uid >= 60000 && uid < 61024, `uid ${uid}: one of the sandbox's`);
  assert.equal(lines[2], '/box');
  assert.match(lines[3]!, new RegExp(`${uid} +60000`), 'main.sh owned by the run\'s uid');
  assert.ok(r.run!.metrics.wallTimeMs > 0);
  assert.equal(r.compile, undefined);
  assert.equal(r.tests, undefined);
});

test("the program's mount tables name nothing of the host: not the layers' dir, the pool's state dir or the worker's pid", { skip }, async () => {
  const r = await executor.execute(sh('cat /proc/self/mountinfo /proc/self/mounts /proc/self/mountstats /proc/1/mountinfo 2>/dev/null; true'));
  assert.equal(r.verdict, 'ok', JSON.stringify(r.run?.error));
  const tables = r.run!.stdout.toString();
  // The root's overlay, whose options the kernel shows as they were given at the mount.
  assert.match(tables, / - overlay cellblock-root .*lowerdir=/, tables);
  for (const host of [dataDir, stateRoot, 'owner-']) assert.ok(!tables.includes(host), `${host} in:\n${tables}`);
  // As a path's part (`/proc/<pid>/fd/3`, `owner-<pid>`), where it was: a bare number is also a
  // mount's id or a device's minor, which a small pid (in the cgroup v2 VM's fresh boot) matched.
  assert.doesNotMatch(tables, new RegExp(`[/-]${process.pid}(?![0-9])`), `the worker's pid ${process.pid} in:\n${tables}`);
});

test("a job's program has its pids limit as RLIMIT_NPROC (its slot's uid is its own)", { skip }, async () => {
  const r = await executor.execute(sh('ulimit -u; ulimit -Hu', { limits: { pids: 12 } }));
  assert.equal(r.verdict, 'ok', JSON.stringify(r.run?.error));
  assert.equal(r.run!.stdout.toString(), '12\n12\n');
});

test('stdin and args reach the program', { skip }, async () => {
  const r = await executor.execute(sh('read x; echo "$x:$1:$2"', { stdin: 'in\n', args: ['one', 'two words'] }));
  assert.equal(r.run!.stdout.toString(), 'in:one:two words\n');
});

test('the first file is the entry point, whatever its name; the others sit beside it', { skip }, async () => {
  const r = await executor.execute({
    runtimeId: 'sh',
    files: [
      { name: 'app.sh', content: Buffer.from('. ./lib/greet.sh; greet "$1"\n') },
      { name: 'lib/greet.sh', content: Buffer.from('greet() { echo "hello $1"; }\n') },
    ],
    args: ['there'],
  });
  assert.equal(r.verdict, 'ok', r.run?.stderr.toString());
  assert.equal(r.run!.stdout.toString(), 'hello there\n');
});

test('a file written by one job is not visible to the next job on the same image', { skip }, async () => {
  const write = await executor.execute(sh('echo secret > /box/left-behind; echo secret > /tmp/left-behind; echo ok'));
  assert.equal(write.verdict, 'ok');
  for (let i = 0; i < 4; i++) {
    const r = await executor.execute(sh('ls -a /box /tmp'));
    assert.equal(r.verdict, 'ok');
    assert.doesNotMatch(r.run!.stdout.toString(), /left-behind/);
  }
});

test('runtime error and exit code', { skip }, async () => {
  const r = await executor.execute(sh('echo oops >&2; exit 3'));
  assert.equal(r.verdict, 'runtime_error');
  assert.equal(r.run!.exitCode, 3);
  assert.equal(r.run!.stderr.toString(), 'oops\n');
});

test('compile once, run per test in a fresh root with the artifacts, compare outputs', { skip }, async () => {
  const source = "if [ -e /box/touched ]; then echo dirty; fi\ntouch /box/touched\nread x\nprintf '%d  \\n' $((x * 2))\n";
  const r = await executor.execute({
    runtimeId: 'shc',
    files: [{ name: 'main.sh', content: Buffer.from(source) }],
    tests: [
      { stdin: '1\n', expectedOutput: '2\n' },
      { stdin: '2\n', expectedOutput: '4' },
      { stdin: '3\n', expectedOutput: '7\n' },
      { stdin: '4\n' },
    ],
  });
  assert.equal(r.compile?.verdict, 'ok', r.compile?.stderr.toString());
  assert.equal(r.run, undefined);
  assert.equal(r.tests?.length, 4);
  assert.deepEqual(r.tests!.map((t) => t.stdout.toString()), ['2  \n', '4  \n', '6  \n', '8  \n'], 'no test sees another one\'s writes');
  assert.deepEqual(r.tests!.map((t) => t.passed), [true, true, false, null]);
  assert.equal(r.verdict, 'ok', 'a wrong answer is `passed: false`, not a verdict');
});

test("a job that names a variant runs the variant's stages: here no compile, the script run by the shell", { skip }, async () => {
  const files = [{ name: 'main.sh', content: Buffer.from('read x; echo "$x:$1:$2"; ls\n') }, { name: 'data.txt', content: Buffer.from('') }];
  const direct = await executor.execute({ runtimeId: 'shc', variant: 'direct', files, stdin: 'in\n', args: ['one'] });
  assert.equal(direct.verdict, 'ok', JSON.stringify(direct.run?.error));
  assert.equal(direct.compile, undefined, 'no compile stage');
  assert.equal(direct.run!.stdout.toString(), 'in:direct:one\ndata.txt\nmain.sh\n', "the variant's argv, and no compiled prog in the work dir");
  assert.deepEqual(direct.runtime, { id: 'shc', language: 'sh', version: '1' });
  // The runtime's own stages, without the variant: compiled, then its prog run.
  const own = await executor.execute({ runtimeId: 'shc', files, stdin: 'in\n', args: ['one'] });
  assert.equal(own.compile?.verdict, 'ok');
  assert.equal(own.run!.stdout.toString(), 'in:one:\ndata.txt\nmain.sh\nprog\n');
  // A variant the runtime lacks is refused before anything runs, as an unknown runtime is.
  for (const variant of ['nope', 'constructor']) {
    await assert.rejects(executor.execute({ runtimeId: 'shc', variant, files }), { name: 'ExecutorError', code: 'unknown_variant', message: `runtime "shc" has no variant "${variant}"` });
  }
  await assert.rejects(executor.execute({ runtimeId: 'sh', variant: 'direct', files }), { name: 'ExecutorError', code: 'unknown_variant' });
});

test('a compiled job gives its compile\'s slot back once its last run has the files', { skip }, async () => {
  // Two tests of 0.3 s each: while the first runs, the compile's slot is still needed (the second
  // run copies from it); while the last one runs it is not, and is back in the pool.
  const inUse: number[] = [];
  let done = false;
  const job = executor
    .execute({ runtimeId: 'shc', files: [{ name: 'main.sh', content: Buffer.from('sleep 0.3\n') }], tests: [{ stdin: '' }, { stdin: '' }] })
    .finally(() => (done = true));
  while (!done) {
    const { images } = executor.stats();
    inUse.push((images.busybox?.inUse ?? 0) + (images['busybox:compile']?.inUse ?? 0));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const r = await job;
  assert.deepEqual(r.tests!.map((t) => t.verdict), ['ok', 'ok']);
  assert.ok(inUse.includes(2), `the compile's slot and the first run's at once: ${inUse.join(' ')}`);
  // The last 0.2 s of the job: inside the last run.
  assert.deepEqual(inUse.slice(-15), Array(15).fill(1), `only the last run's slot at the end: ${inUse.join(' ')}`);
});

const build = (script: string): ExecuteRequest => ({ runtimeId: 'build', files: [{ name: 'build.sh', content: Buffer.from(script) }] });

test('a compile leaves at most the work dir\'s file count (8192) for the runs', { skip }, async () => {
  const r = await executor.execute(build('i=0; while [ $i -lt 9000 ]; do : > f$i || exit 1; i=$((i+1)); done\n'));
  assert.equal(r.verdict, 'compile_error');
  assert.match(r.compile!.stderr.toString(), /No space left on device/);
  const fits = await executor.execute(build('i=0; while [ $i -lt 4000 ]; do : > f$i || exit 1; i=$((i+1)); done\n'));
  assert.equal(fits.verdict, 'ok', fits.compile!.stderr.toString());
  assert.equal(fits.run!.stdout.toString().trim(), '4001', 'the 4000 files and build.sh, copied');
});

test('a compile whose files a run\'s work dir cannot hold is compile_error, said in its stderr', { skip }, async () => {
  // One 4 MiB file and 70 hard links to it: 4 MiB in the compile's work dir, 284 MiB to copy
  // into a run's (256 MiB), past the copy's bound (MAX_COMPILED_TREE_BYTES, 128 MiB).
  const r = await executor.execute(build('head -c 4194304 /dev/zero > big || exit 1; i=0; while [ $i -lt 70 ]; do ln big l$i || exit 1; i=$((i+1)); done\n'));
  assert.equal(r.compile!.verdict, 'ok', r.compile!.stderr.toString());
  assert.equal(r.verdict, 'compile_error');
  assert.equal(r.run, undefined);
  assert.match(r.compile!.stderr.toString(), /^cellblock: the compile's files are more than 134217728 bytes, each file counted at its whole size/m);
});

test('a failing compile is compile_error with the compiler output, and nothing runs', { skip }, async () => {
  const r = await executor.execute({
    runtimeId: 'shc',
    files: [{ name: 'main.sh', content: Buffer.from('if then fi (\n') }],
    tests: [{ stdin: '', expectedOutput: '' }],
  });
  assert.equal(r.verdict, 'compile_error');
  assert.notEqual(r.compile!.verdict, 'ok');
  assert.ok(r.compile!.stderr.length > 0, 'the compiler said why');
  assert.equal(r.tests, undefined);
  assert.equal(r.run, undefined);
});

test('the job verdict is the first failing test\'s', { skip }, async () => {
  const r = await executor.execute({
    runtimeId: 'shc',
    files: [{ name: 'main.sh', content: Buffer.from('read x; exit $x\n') }],
    tests: [{ stdin: '0' }, { stdin: '5' }, { stdin: '0' }],
  });
  assert.deepEqual(r.tests!.map((t) => t.verdict), ['ok', 'runtime_error', 'ok']);
  assert.equal(r.verdict, 'runtime_error');
});

test("the job's comparison decides each test's passed", { skip }, async () => {
  const tests = [{ stdin: '', expectedOutput: '1 yes' }];
  const passed = async (comparison?: ExecuteRequest['comparison']) =>
    (await executor.execute(sh('echo 1.0000001; echo yes', { tests, ...(comparison ? { comparison } : {}) }))).tests![0]!.passed;
  assert.deepEqual(
    [await passed(), await passed({ mode: 'tokens' }), await passed({ mode: 'tokens', floatTolerance: 1e-6 }), await passed({ mode: 'exact' })],
    [false, false, true, false],
  );
  // A job queued by another producer is checked by the worker too.
  await assert.rejects(executor.execute(sh('', { tests, comparison: { mode: 'words' } as never })), { name: 'ExecutorError', code: 'bad_request', message: 'comparison.mode must be one of lines, exact, tokens' });
  await assert.rejects(executor.execute(sh('', { comparison: { mode: 'exact' } })), { name: 'ExecutorError', code: 'bad_request', message: /give tests/ });
});

test('stopOnFailure: no test runs after the first that fails, by its verdict or by its output', { skip }, async () => {
  const echo = (extra: Partial<ExecuteRequest>) => executor.execute(sh('read x; [ "$x" = crash ] && exit 3; echo "$x"', { stopOnFailure: true, ...extra }));
  const wrong = await echo({ tests: [{ stdin: 'a', expectedOutput: 'a' }, { stdin: 'b', expectedOutput: 'x' }, { stdin: 'c', expectedOutput: 'c' }, { stdin: 'd' }] });
  assert.deepEqual(wrong.tests!.map((t) => [t.stdout.toString(), t.passed]), [['a\n', true], ['b\n', false]]);
  assert.deepEqual([wrong.verdict, wrong.skippedTests], ['ok', 2]);
  const crashed = await echo({ tests: [{ stdin: 'crash' }, { stdin: 'b' }] });
  assert.deepEqual([crashed.verdict, crashed.tests!.length, crashed.skippedTests], ['runtime_error', 1, 1]);
  // A run that printed the expected output and then failed is not checked: passed null, failed by its verdict.
  const printedThenCrashed = await echo({ tests: [{ stdin: 'a', expectedOutput: 'a' }, { stdin: 'crash', expectedOutput: '' }] });
  assert.deepEqual([printedThenCrashed.tests!.map((t) => [t.verdict, t.passed]), printedThenCrashed.verdict], [[['ok', true], ['runtime_error', null]], 'runtime_error']);
  // Nothing to judge a test by (no expected output) is not a failure.
  const unjudged = await echo({ tests: [{ stdin: 'a' }, { stdin: 'b', expectedOutput: 'x' }] });
  assert.deepEqual([unjudged.tests!.map((t) => t.passed), unjudged.skippedTests], [[null, false], undefined]);
  // A cancel is not a failure: the job is cancelled, with nothing said skipped.
  const abort = new AbortController();
  const cancelling = executor.execute(sh('sleep 5', { stopOnFailure: true, tests: [{ stdin: '' }, { stdin: '' }], signal: abort.signal }));
  setTimeout(() => abort.abort(), 300);
  const cancelled = await cancelling;
  assert.deepEqual([cancelled.verdict, cancelled.tests!.length, cancelled.skippedTests], ['cancelled', 1, undefined]);
  // A compiled job stopped early gives its compile's slot back all the same.
  const compiled = await executor.execute({ runtimeId: 'shc', files: [{ name: 'main.sh', content: Buffer.from('exit 1\n') }], stopOnFailure: true, tests: [{ stdin: '' }, { stdin: '' }, { stdin: '' }] });
  assert.deepEqual([compiled.verdict, compiled.tests!.length, compiled.skippedTests], ['runtime_error', 1, 2]);
  assert.equal(executor.stats().images['busybox:compile']?.inUse, 0);
  // Without it, every test runs.
  const all = await echo({ stopOnFailure: false, tests: [{ stdin: 'crash' }, { stdin: 'b', expectedOutput: 'x' }, { stdin: 'c' }] });
  assert.deepEqual([all.tests!.length, all.skippedTests], [3, undefined]);
});

test('limits: the request overrides the defaults and is clamped to the maxima', { skip }, async () => {
  const r = await executor.execute(sh('sleep 5', { limits: { wallTimeMs: 300 } }));
  assert.equal(r.verdict, 'wall_time_limit');
  assert.ok(r.run!.metrics.wallTimeMs < 2000);
});

test('an abort cancels the running sandbox', { skip }, async () => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 200);
  const r = await executor.execute(sh('sleep 10', { signal: controller.signal }));
  assert.equal(r.verdict, 'cancelled');
  assert.ok(Date.now() - started < 3000);
  const already = await executor.execute(sh('echo never', { signal: AbortSignal.abort() }));
  assert.equal(already.verdict, 'cancelled');
  assert.equal(already.run, undefined);
});

test('close refuses new jobs, lets the running one finish, then leaves nothing behind', { skip }, async () => {
  const { createExecutor } = await import('../../src/executor/create.js');
  const closingRoot = mkdtempSync(join(tmpdir(), 'cellblock-executor-close-test-'));
  const closingInstance = `exectest-close-${process.pid}`;
  const closing = await createExecutor({
    dataDir,
    runtimes: [SH],
    pool: { stateRoot: closingRoot, sizing: { minReady: 1, maxReady: 2 }, warmImages: ['busybox'] },
    sandbox: { instanceId: closingInstance },
  });
  try {
    const running = closing.execute(sh('sleep 0.5; echo done'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    const closed = closing.close();
    await assert.rejects(closing.execute(sh('echo late')), { name: 'ExecutorError', code: 'closed' });
    const r = await running;
    assert.equal(r.verdict, 'ok', JSON.stringify(r.run?.error));
    assert.equal(r.run!.stdout.toString(), 'done\n');
    await closed;
    assert.deepEqual(mountsMentioning(closingRoot), [], 'no mounts left');
    assert.deepEqual(cgroupDirsUnder(`cellblock/${closingInstance}`), [], 'no cgroups left');
  } finally {
    await closing.close().catch(() => {});
    rmSync(closingRoot, { recursive: true, force: true });
  }
});

test('bad requests are typed errors', { skip }, async () => {
  await assert.rejects(executor.execute({ runtimeId: 'nope', files: [{ name: 'a', content: Buffer.from('') }] }), { name: 'ExecutorError', code: 'unknown_runtime' });
  await assert.rejects(executor.execute({ runtimeId: 'sh', files: [] }), { name: 'ExecutorError', code: 'bad_request' });
  await assert.rejects(executor.execute(sh('', { files: [{ name: '../escape', content: Buffer.from('') }] })), { name: 'ExecutorError', code: 'bad_request' });
  // What the engine would refuse is refused here, before a slot is taken, not as a failed run.
  await assert.rejects(executor.execute(sh('', { args: ['a\0b'] })), { name: 'ExecutorError', code: 'bad_request', message: 'args[0] must be a string without NUL bytes' });
  const nineRuns = Array.from({ length: 9 }, () => ({ stdin: '' }));
  await assert.rejects(executor.execute(sh('', { tests: nineRuns })), {
    name: 'ExecutorError',
    code: 'bad_request',
    message: `9 runs of up to ${MiB} bytes could store ${9 * MiB} bytes of output; at most ${8 * MiB} per job`,
  });
  await assert.rejects(executor.execute(sh('', { limits: { memoryBytes: 32 * MiB + 0.5 } })), {
    name: 'ExecutorError',
    code: 'bad_request',
    message: 'limits.memoryBytes must be an integer',
  });
});

test('pool figures: ready, hits, misses, prepare time', { skip }, async () => {
  const s = executor.stats().images.busybox!;
  assert.ok(s.hits + s.misses > 0);
  assert.ok(s.prepared > 0 && s.prepareMsTotal > 0);
  for (const value of Object.values(s)) assert.equal(typeof value, 'number', 'flat numbers, as the worker advertises them');
  assert.ok(s.ready >= 0 && s.ready <= 3);
});

test('output files: each run\'s own, read without following a link, bounded by outputBytes', { skip }, async () => {
  const script = [
    'read v; echo "result $1 $v" > out.txt',
    'mkdir -p dir && printf nested > dir/res.txt',
    'ln -s /etc/hostname link.txt',
    'ln -s /etc dirlink',
    'mkfifo fifo',
    'head -c 3000 /dev/zero > big.bin',
    'mkdir adir',
  ].join('\n');
  const names = ['out.txt', 'dir/res.txt', 'missing.txt', 'link.txt', 'dirlink/hostname', 'fifo', 'big.bin', 'adir', 'out.txt/x'];
  const r = await executor.execute(sh(script, { outputFiles: names, limits: { outputBytes: 1000 }, tests: [{ stdin: 'one\n' }, { stdin: 'two\n' }], args: ['x'] }));
  assert.equal(r.verdict, 'ok', JSON.stringify(r.tests?.map((t) => t.stderr.toString())));
  for (const [index, test] of r.tests!.entries()) {
    const files = test.outputFiles!;
    const own = `result x ${['one', 'two'][index]}\n`;
    assert.deepEqual(files.map((f) => f.name), names, 'in the asked order');
    const shown = Object.fromEntries(files.map((f) => [f.name, [f.content?.toString() ?? null, f.sizeBytes, f.truncated, f.problem ?? null]]));
    assert.deepEqual(shown, {
      'out.txt': [own, own.length, false, null],
      'dir/res.txt': ['nested', 6, false, null],
      'missing.txt': [null, 0, false, 'not_found'],
      'link.txt': [null, 0, false, 'not_a_regular_file'],
      'dirlink/hostname': [null, 0, false, 'not_a_regular_file'],
      fifo: [null, 0, false, 'not_a_regular_file'],
      'big.bin': ['\0'.repeat(1000), 3000, true, null],
      adir: [null, 0, false, 'not_a_regular_file'],
      'out.txt/x': [null, 0, false, 'not_found'],
    });
  }
  // fileSizeBytes at most outputBytes: the program's RLIMIT_FSIZE is one byte more (so that a
  // stream written past it shows), and a file of that one byte more is returned cut, as written past.
  const sized = await executor.execute(sh("trap '' XFSZ; head -c 1001 /dev/zero > f.bin; head -c 1000 /dev/zero > g.bin", { outputFiles: ['f.bin', 'g.bin'], limits: { outputBytes: 4000, fileSizeBytes: 1000 } }));
  assert.deepEqual(sized.run!.outputFiles!.map((f) => [f.name, f.content?.length, f.sizeBytes, f.truncated]), [['f.bin', 1000, 1001, true], ['g.bin', 1000, 1000, false]]);
  await assert.rejects(executor.execute(sh('true', { outputFiles: ['a', './a'] })), /output file "a" is asked for twice/);
  await assert.rejects(executor.execute(sh('true', { outputFiles: ['../etc/passwd'] })), /must be a relative path inside the work dir/);
});

test('a ready container whose init was killed while it waited is not handed to a job', { skip }, async () => {
  const discarded = () => Object.values(executor.stats().images).reduce((sum, figures) => sum + figures.discarded, 0);
  // Settled first: a slot prepared after the kill would be the one taken (takes are LIFO).
  const settled = () =>
    (executor.stats().images.busybox?.ready ?? 0) >= 1 &&
    Object.values(executor.stats().images).every((figures) => figures.preparing === 0 && figures.retiring === 0 && figures.ready >= figures.target);
  await until(settled, 10_000, 10, 'a ready busybox slot, and nothing being prepared or torn down');
  // The inits of every container the pool holds: this process's children but the mount agent.
  const inits = childPids().filter((pid) => !baseline.has(pid) && !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('mount-agent'));
  assert.ok(inits.length >= 1, 'at least the ready slot\'s init');
  for (const pid of inits) process.kill(pid, 'SIGKILL');
  await until(() => inits.every((pid) => !existsSync(`/proc/${pid}`)), 5000, 5, 'the inits reaped');
  await sleep(100); // the engine's word of each reap reaches the JS thread
  const before = discarded();
  const r = await executor.execute(sh('echo alive'));
  assert.equal(r.verdict, 'ok', JSON.stringify(r.run?.error));
  assert.equal(r.run!.stdout.toString(), 'alive\n');
  assert.ok(discarded() > before, 'the dead slot was discarded, not used');
});

test('a run whose init is killed mid-run (killed by pid) is internal_error (init_died), not ok; the next job runs', { skip }, async () => {
  const marker = 'executor-cut-short-by-init-death';
  const running = executor.execute(sh('echo s; sleep 10; echo e', { args: [marker] }));
  let init: number | undefined;
  await until(() => (init = initOfProgram(marker)) !== undefined, 5000, 5, 'the job running, its init found');
  process.kill(init!, 'SIGKILL');
  const r = await running;
  assert.equal(r.verdict, 'internal_error');
  assert.deepEqual([r.run?.error?.step, r.run?.error?.code], ['init_died', 'ESRCH']);
  const next = await executor.execute(sh('echo alive'));
  assert.equal(next.verdict, 'ok', JSON.stringify(next.run?.error));
});

test('a compile takes a slot kept for compiles on its image; its run takes one of the image', { skip }, async () => {
  const takes = (key: string) => {
    const s = executor.stats().images[key];
    return s ? s.hits + s.misses : 0;
  };
  const before = { compile: takes('busybox:compile'), run: takes('busybox') };
  const r = await executor.execute({ runtimeId: 'shc', files: [{ name: 'main.sh', content: Buffer.from('echo compiled\n') }] });
  assert.equal(r.verdict, 'ok', JSON.stringify(r.compile?.error ?? r.run?.error));
  assert.equal(r.run!.stdout.toString(), 'compiled\n');
  assert.equal(takes('busybox:compile') - before.compile, 1, 'the compile: one take of a compile slot');
  assert.equal(takes('busybox') - before.run, 1, 'the run: one take of a run slot');
});

test('many jobs through the pool leave no extra mounts, cgroups, processes or namespaces', { skip, timeout: 600_000 }, async () => {
  const jobs = Number(process.env.CELLBLOCK_POOL_SOAK_JOBS ?? 10_000);
  const concurrency = 2;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs) {
      next++;
      const r = await executor.execute({ runtimeId: 'true', files: [{ name: 'unused', content: Buffer.alloc(0) }] });
      if (r.verdict !== 'ok') assert.fail(`job ${next}: ${r.verdict} ${JSON.stringify(r.run?.error)}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  // Let teardown and refill settle. Ready slots of every key (the image's runs and compiles).
  const allKeys = () => {
    const sum = { preparing: 0, prepared: 0, destroyed: 0, ready: 0 };
    for (const figures of Object.values(executor.stats().images)) {
      for (const name of Object.keys(sum) as (keyof typeof sum)[]) sum[name] += figures[name];
    }
    return sum;
  };
  const deadline = Date.now() + 10_000;
  let s = allKeys();
  while ((s.preparing > 0 || s.prepared - s.destroyed !== s.ready) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    s = allKeys();
  }
  assert.equal(s.prepared - s.destroyed, s.ready, 'every slot that is not ready was destroyed');
  // Mounts: the owner's slots tmpfs, plus a tmpfs and an overlay per ready slot.
  assert.equal(mountsMentioning(stateRoot).length, 1 + 2 * s.ready);
  // Processes: the mount agent and, per ready slot, a waiting container init and its program's
  // child (already in the slot's cgroup, waiting for "go").
  assert.equal(ourDescendants().length, 1 + 2 * s.ready, `descendants: ${ourDescendants()}`);
  // cgroups: one per ready slot's container (in each hierarchy).
  const containerCgroups = new Set(cgroupsOfInstance().map((dir) => dir.split('/').pop()));
  assert.equal(containerCgroups.size, s.ready, cgroupsOfInstance().join('\n'));
  // Namespaces live only while a process, mount or open file holds them: the processes are
  // counted above, and this process holds no namespace file open.
  assert.deepEqual(openNamespaceFds(), []);
});
