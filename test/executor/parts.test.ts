// The executor's parts that need no container: limits, argv templates, output comparison,
// verdicts, and writing/copying work dirs on a real filesystem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, existsSync } from 'node:fs';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultStageLimits, effectiveLimits } from '../../src/executor/limits.js';
import { checkJudgeProgram, checkSubmission, outputAboveMaximum } from '../../src/executor/check.js';
import { envStrings, leastMemoryBytes } from '../../src/sandbox/spec.js';
import { compileArgv, expandLimits, runArgv, stageEnv } from '../../src/executor/argv.js';
import { outputMatches, testOutputPassed } from '../../src/executor/compare.js';
import { cutShortByCancel, findInStages, verdictAfterCompile, verdictOfRuns } from '../../src/executor/verdict.js';
import { checkedFileName, CompiledFilesError, copyCompiledWorkDir, copyWorkDir, MAX_COMPILED_TREE_BYTES, readOutputFiles, writeSourceFiles } from '../../src/executor/files.js';
import { imageOfSlotKey, slotHoldsContainer, slotKey, startupPathsBySlotKey } from '../../src/executor/slot-keys.js';
import { ExecutorError } from '../../src/executor/errors.js';
import type { Runtime } from '../../src/images/types.js';
import { variantOf } from '../../src/images/variants.js';
import type { Limits } from '../../src/sandbox/types.js';
import type { ExecuteResult, StageResult } from '../../src/executor/types.js';
import { MiB } from '../../src/units.js';

const defaults: Limits = {
  cpuTimeMs: 2000, wallTimeMs: 5000, memoryBytes: 256 * MiB, pids: 64, outputBytes: MiB,
  fileSizeBytes: 16 * MiB, openFiles: 64, stackBytes: 8 * MiB, tmpBytes: 64 * MiB, cpuCores: 1,
};
const maxima: Limits = { ...defaults, cpuTimeMs: 10_000, wallTimeMs: 20_000, memoryBytes: 512 * MiB };

test('limits: defaults, overridden in order, clamped to the maxima', () => {
  assert.deepEqual(effectiveLimits(defaults, maxima), defaults);
  const l = effectiveLimits(defaults, maxima, { cpuTimeMs: 3000 }, { cpuTimeMs: 50_000, memoryBytes: 100 * MiB });
  assert.equal(l.cpuTimeMs, 10_000);
  assert.equal(l.memoryBytes, 100 * MiB);
  assert.equal(l.pids, 64);
  assert.throws(() => effectiveLimits(defaults, maxima, { pids: -1 }), ExecutorError);
  assert.throws(() => effectiveLimits(defaults, maxima, { wallTimeMs: Number.NaN }), ExecutorError);
});

test('limits: a CPU time limit named without a wall time limit raises the wall time limit by the defaults\' ratio', () => {
  const wall = (...overrides: Partial<Limits>[]) => effectiveLimits(defaults, maxima, ...overrides).wallTimeMs;
  assert.equal(wall({ cpuTimeMs: 6000 }), 15_000, '6 s of CPU time, 5 s of wall time per 2 s of it');
  assert.equal(wall({ cpuTimeMs: 2001 }), 5003, 'rounded up to a whole millisecond');
  assert.equal(wall({ cpuTimeMs: 1000 }), 5000, 'a lower CPU time limit keeps the default wall time');
  assert.equal(wall({ cpuTimeMs: 6000, wallTimeMs: 3000 }), 3000, 'a named wall time is kept as given');
  assert.equal(wall({ cpuTimeMs: 6000 }, { wallTimeMs: 7000 }), 7000, 'named by any of the overrides');
  assert.equal(wall({ cpuTimeMs: 9000 }), 20_000, 'clamped to the maximum');
  assert.deepEqual([effectiveLimits(defaults, maxima, { cpuTimeMs: 50_000 }).cpuTimeMs, wall({ cpuTimeMs: 50_000 })], [10_000, 20_000]);
  assert.equal(wall({ memoryBytes: 100 * MiB }), 5000, 'other limits change nothing');
  // As the API and the worker check a job, and for an interactor, whose wall time is at least the
  // program's and a second more where its limits name none, or more where its CPU time asks for it.
  const runtime: Runtime = { id: 'sh', language: 'sh', version: '1', aliases: [], image: 'busybox', sourceFile: 'main.sh', run: { argv: ['/bin/sh', '{entry}'] }, env: {},
    defaultLimits: defaults, maxLimits: maxima, helloWorld: { source: '', stdout: '' } };
  assert.equal(checkSubmission(runtime, { fileNames: ['main.sh'], args: [], limits: { cpuTimeMs: 4000 } }).runLimits.wallTimeMs, 10_000);
  const interactorWall = (limits: Partial<Limits>, programWallTimeMs: number) =>
    checkJudgeProgram('interactor', runtime, { files: [{ name: 'judge.sh' }], limits }, 1, programWallTimeMs).runLimits.wallTimeMs;
  assert.equal(interactorWall({ cpuTimeMs: 6000 }, 5000), 15_000, 'its CPU time asks for more than the program\'s wall time');
  assert.equal(interactorWall({ cpuTimeMs: 6000 }, 16_000), 17_000, 'the program\'s wall time asks for more');
});

test('a submission is checked as execute() and the engine would check it, without running it', () => {
  const runtime: Runtime = { id: 'c', language: 'c', version: '1', aliases: [], image: 'gcc', sourceFile: 'main.c', run: { argv: ['./main'] }, env: {},
    defaultLimits: defaults, maxLimits: maxima, helloWorld: { source: '', stdout: '' },
    compile: { argv: ['gcc', '{files}'], limits: { cpuTimeMs: 5000 } } };
  const checked = checkSubmission(runtime, { fileNames: ['./main.c'], args: ['-v'], limits: { cpuTimeMs: 1.5 }, compileLimits: { pids: 32 } });
  assert.deepEqual(checked.fileNames, ['main.c']);
  assert.equal(checked.runLimits.cpuTimeMs, 1.5, 'a time may be a fraction of a millisecond');
  assert.deepEqual([checked.compileLimits?.cpuTimeMs, checked.compileLimits?.pids], [5000, 32]);
  assert.equal(checked.mostOutputBytes, 2 * MiB, 'one run and the compile, 1 MiB each');
  const threeRuns = checkSubmission(runtime, { fileNames: ['main.c'], args: [], limits: { outputBytes: 1000 }, runs: 3 });
  assert.equal(threeRuns.mostOutputBytes, 3 * 1000 + MiB);
  // Each run's output files, each up to its outputBytes, count too.
  const withFiles = checkSubmission(runtime, { fileNames: ['main.c'], args: [], limits: { outputBytes: 1000 }, runs: 3, outputFiles: ['a.txt', './out/b.txt'] });
  assert.deepEqual([withFiles.outputFiles, withFiles.mostOutputBytes], [['a.txt', 'out/b.txt'], 3 * 1000 * 3 + MiB]);
  assert.equal(
    outputAboveMaximum(withFiles, MiB),
    `3 runs of up to 1000 bytes (and as much for each of 2 output files) and a compile of up to ${MiB} could store ${9000 + MiB} bytes of output; at most ${MiB} per job`,
  );
  const refuses = (submission: Parameters<typeof checkSubmission>[1], message: string | RegExp) =>
    assert.throws(
      () => checkSubmission(runtime, submission),
      (error: unknown) =>
        error instanceof ExecutorError && error.code === 'bad_request' && (typeof message === 'string' ? error.message === message : message.test(error.message)),
    );
  refuses({ fileNames: [], args: [] }, 'a submission needs at least one file');
  // Names that could not all be written into one work dir (once normalised): said before a job is
  // queued, not when the worker writes them.
  refuses({ fileNames: ['main.c', './main.c'], args: [] }, 'file "main.c" is given twice');
  refuses({ fileNames: ['lib', 'lib/util.h'], args: [] }, 'file "lib/util.h" needs "lib", another file, as its directory');
  refuses({ fileNames: ['lib/util.h', 'lib'], args: [] }, 'file "lib" is also the directory of another file');
  assert.deepEqual(checkSubmission(runtime, { fileNames: ['lib/a.h', 'lib/b.h', 'main.c'], args: [] }).fileNames, ['lib/a.h', 'lib/b.h', 'main.c']);
  refuses({ fileNames: ['main.c'], args: ['ok', 'a\0b'] }, 'args[1] must be a string without NUL bytes');
  refuses({ fileNames: ['main.c'], args: [], limits: { pids: 2.5 } }, 'limits.pids must be an integer');
  refuses({ fileNames: ['main.c'], args: [], compileLimits: { stackBytes: MiB / 3 } }, 'compileLimits.stackBytes must be an integer');
  refuses({ fileNames: ['main.c'], args: [], limits: { memoryBytes: 0 } }, 'limit memoryBytes must be a positive number, got 0');
  // What execve copies inside the run's cgroup must fit in the memory limit (the engine's
  // leastMemoryBytes): 1 MiB and the strings of argv and env (9 bytes and a NUL each here).
  refuses({ fileNames: ['main.c'], args: [], limits: { memoryBytes: MiB - 1 } }, 'limits.memoryBytes must be at least 1048576 (1 MiB), what the kernel may charge to a run before its program starts');
  const bigArgs = Array.from({ length: 16 }, () => 'x'.repeat(100_000));
  const leastForBigArgs = MiB + ('./main'.length + 9) + 16 * (100_000 + 9) + 16;
  refuses(
    { fileNames: ['main.c'], args: bigArgs, limits: { memoryBytes: leastForBigArgs - 1 } },
    `limits.memoryBytes ${leastForBigArgs - 1} is below ${leastForBigArgs}: the program's arguments, file names and environment take ${leastForBigArgs - MiB} bytes, which must fit in its memory limit with 1048576 to spare`,
  );
  assert.equal(checkSubmission(runtime, { fileNames: ['main.c'], args: bigArgs, limits: { memoryBytes: leastForBigArgs } }).runLimits.memoryBytes, leastForBigArgs);
  refuses(
    // Long names of parts no longer than a directory entry's (255 bytes), each at most 1024 bytes.
    { fileNames: Array.from({ length: 12 }, (_, i) => `${Array.from({ length: 4 }, () => 'd'.repeat(249)).join('/')}/${i}.c`), args: [], compileLimits: { memoryBytes: MiB } },
    /^compileLimits\.memoryBytes 1048576 is below /,
  );
  // Compile arguments: only where the compile argv says where they go, and counted in its memory.
  refuses({ fileNames: ['main.c'], args: [], compileArgs: ['-O0'] }, 'runtime "c" takes no compile arguments (its compile.argv has no "{args}")');
  const flagged: Runtime = { ...runtime, compile: { ...runtime.compile!, argv: ['gcc', '{args}', '{files}'] } };
  assert.equal(checkSubmission(flagged, { fileNames: ['main.c'], args: [], compileArgs: ['-O0'] }).fileNames[0], 'main.c');
  const refusesFlagged = (submission: Parameters<typeof checkSubmission>[1], message: string | RegExp) =>
    assert.throws(() => checkSubmission(flagged, submission), (error: unknown) => error instanceof ExecutorError && (typeof message === 'string' ? error.message === message : message.test(error.message)));
  refusesFlagged({ fileNames: ['main.c'], args: [], compileArgs: ['-O0', '-D\0'] }, 'compileArgs[1] must be a string without NUL bytes');
  refusesFlagged({ fileNames: ['main.c'], args: [], compileArgs: bigArgs, compileLimits: { memoryBytes: 2 * MiB } }, /^compileLimits\.memoryBytes 2097152 is below /);
  const { compile: _compile, ...interpreted } = runtime;
  assert.throws(() => checkSubmission(interpreted, { fileNames: ['main.c'], args: [], compileArgs: ['-O0'] }), /runtime "c" has no compile step: compileArgs does not apply/);
  assert.equal(checkSubmission(interpreted, { fileNames: ['main.c'], args: [], compileArgs: [] }).compileLimits, undefined, 'none is no compile argument');
  assert.deepEqual(compileArgv(flagged.compile!, ['main.c'], ['-O0', '-DX'], defaults), ['gcc', '-O0', '-DX', 'main.c']);
  // The compile of the entry file alone (Judge0's): the entry must be a source; the others need not be.
  const sourcedOnly: Runtime = { ...runtime, compile: { ...runtime.compile!, sourceSuffixes: ['.c'] } };
  assert.deepEqual(checkSubmission(sourcedOnly, { fileNames: ['main.c', 'helper.c'], args: [], compileEntryOnly: true }).fileNames, ['main.c', 'helper.c']);
  assert.throws(
    () => checkSubmission(sourcedOnly, { fileNames: ['notes.txt', 'helper.c'], args: [], compileEntryOnly: true }),
    /^ExecutorError: the entry file \(the only one compiled\) is not a c source for the compiler/,
  );
  // A compile that names its sources: a submission must give it one.
  const sourced: Runtime = { ...runtime, compile: { ...runtime.compile!, sourceSuffixes: ['.c'] } };
  assert.deepEqual(checkSubmission(sourced, { fileNames: ['main.c', 'input.txt'], args: [] }).fileNames, ['main.c', 'input.txt']);
  assert.throws(
    () => checkSubmission(sourced, { fileNames: ['main.txt', 'util.h'], args: [] }),
    (error: unknown) => error instanceof ExecutorError && error.code === 'bad_request' && /none of the files is a c source for the compiler \(a name ending in \.c\)/.test(error.message),
  );
});

test("a job that names a variant of its runtime is checked as the variant's stages run it; a variant the runtime lacks is refused", () => {
  const runtime: Runtime = { id: 'java', language: 'java', version: '17', aliases: [], image: 'java', sourceFile: 'Main.java', env: {},
    defaultLimits: defaults, maxLimits: maxima, helloWorld: { source: '', stdout: '' },
    compile: { argv: ['javac', '{files}'], sourceSuffixes: ['.java'] }, run: { argv: ['java', 'Main', '{args}'] },
    variants: { piston: { run: { argv: ['java', '--source', '17', '{entry}', '{args}'] } } } };
  const own = checkSubmission(runtime, { fileNames: ['Main.java'], args: [] });
  assert.equal(own.runtime, runtime);
  assert.ok(own.compileLimits, 'the runtime compiles');
  const varied = checkSubmission(runtime, { fileNames: ['file0.code'], args: [], variant: 'piston' });
  assert.equal(varied.runtime, variantOf(runtime, 'piston'));
  assert.equal(varied.compileLimits, undefined, 'no compile: the variant has none');
  assert.equal(varied.mostOutputBytes, MiB, 'one run, no compile output');
  // The variant's own argv is what must fit in the memory limit: it names the entry file, which the
  // runtime's own run does not.
  const longName = `${'d'.repeat(200)}/`.repeat(4) + 'x.java';
  const leastForVariant = MiB + ['java', '--source', '17', longName].reduce((sum, arg) => sum + arg.length + 9, 0) + 16;
  checkSubmission(runtime, { fileNames: [longName], args: [], limits: { memoryBytes: leastForVariant - 1 }, compileLimits: { memoryBytes: 64 * MiB } });
  assert.throws(
    () => checkSubmission(runtime, { fileNames: [longName], args: [], limits: { memoryBytes: leastForVariant - 1 }, variant: 'piston' }),
    (error: unknown) => error instanceof ExecutorError && error.code === 'bad_request' && error.message.startsWith(`limits.memoryBytes ${leastForVariant - 1} is below ${leastForVariant}: `),
  );
  // A sources-only compile is the runtime's: the variant has no compile to need a source.
  assert.throws(() => checkSubmission(runtime, { fileNames: ['file0.code'], args: [] }), /none of the files is a java source/);
  for (const variant of ['nope', 'constructor', 'x'.repeat(500)]) {
    assert.throws(
      () => checkSubmission(runtime, { fileNames: ['Main.java'], args: [], variant }),
      (error: unknown) => error instanceof ExecutorError && error.code === 'unknown_variant' && error.message.startsWith(`runtime "java" has no variant "${variant.slice(0, 20)}`) && error.message.length < 120,
    );
  }
});

test("a job without limits of its own gets its runtime's defaults, whatever jobs were checked before", () => {
  const runtime: Runtime = { id: 'c', language: 'c', version: '1', aliases: [], image: 'gcc', sourceFile: 'main.c', run: { argv: ['./main'] }, env: { PATH: '/bin' },
    defaultLimits: defaults, maxLimits: maxima, helloWorld: { source: '', stdout: '' },
    compile: { argv: ['gcc', '{files}'], limits: { cpuTimeMs: 5000 } } };
  const plain = { fileNames: ['main.c'], args: [] };
  const first = checkSubmission(runtime, plain);
  const own = checkSubmission(runtime, { ...plain, limits: { cpuTimeMs: 7000, pids: 3 }, compileLimits: { memoryBytes: 200 * MiB } });
  assert.deepEqual([own.runLimits.cpuTimeMs, own.runLimits.pids, own.compileLimits?.memoryBytes, own.compileLimits?.cpuTimeMs], [7000, 3, 200 * MiB, 5000]);
  const again = checkSubmission(runtime, plain);
  assert.deepEqual(again.runLimits, defaults);
  // The compile's CPU time, named alone, raises its wall time with it (effectiveLimits).
  assert.deepEqual(again.compileLimits, { ...defaults, cpuTimeMs: 5000, wallTimeMs: 12_500 });
  assert.deepEqual(first, again);
  // Shared by every such job: a caller cannot change the next job's limits through its own.
  assert.throws(() => {
    again.runLimits.cpuTimeMs = 1;
  }, TypeError);
  assert.equal(checkSubmission(runtime, plain).runLimits.cpuTimeMs, defaults.cpuTimeMs);
  // Empty limits, as the queue gives a worker for a job that names none, are none: the same
  // defaults, not computed again for each job.
  const empty = checkSubmission(runtime, { ...plain, limits: {}, compileLimits: { cpuTimeMs: undefined } });
  assert.equal(empty.runLimits, again.runLimits);
  assert.equal(empty.compileLimits, again.compileLimits);
  // A runtime whose own defaults the engine refuses is refused at every check, not once.
  const broken: Runtime = { ...runtime, defaultLimits: { ...defaults, pids: 1.5 } };
  for (let i = 0; i < 2; i++) assert.throws(() => checkSubmission(broken, plain), /limits\.pids must be an integer/);
  // The same defaults where no job is at hand (Judge0's /languages/:id, the start-up path traces):
  // a stage for each the runtime has, no compile without one.
  assert.deepEqual(defaultStageLimits(runtime), { compile: again.compileLimits, run: again.runLimits });
  const { compile: _, ...interpreted } = runtime;
  assert.deepEqual(defaultStageLimits(interpreted), { run: defaults });
});

test('argv: {files} and {args} expand to zero or more elements; run appends args without {args}', () => {
  assert.deepEqual(compileArgv({ argv: ['gcc', '-O2', '{files}', '-o', 'a.out'] }, ['a.c', 'b.c'], ['x'], defaults), ['gcc', '-O2', 'a.c', 'b.c', '-o', 'a.out']);
  // With sourceSuffixes, only the sources go to the compiler: data files and headers stay in the work dir.
  const gcc = { argv: ['gcc', '{files}', '-o', 'main'], sourceSuffixes: ['.c'] };
  assert.deepEqual(compileArgv(gcc, ['main.c', 'util.h', 'input.txt', 'lib/util.c', 'notes.c.txt'], [], defaults), ['gcc', 'main.c', 'lib/util.c', '-o', 'main']);
  // {entry}: the first source alone (rustc's crate root), past files that are not sources.
  assert.deepEqual(compileArgv({ argv: ['rustc', '{entry}'], sourceSuffixes: ['.rs'] }, ['input.txt', 'main.rs', 'util.rs'], [], defaults), ['rustc', 'main.rs']);
  assert.deepEqual(runArgv(['python3', '{files}'], ['main.py'], ['1', '2'], defaults), ['python3', 'main.py', '1', '2']);
  assert.deepEqual(runArgv(['./a.out', '{args}', '--end'], ['a.c'], ['1'], defaults), ['./a.out', '1', '--end']);
  assert.deepEqual(runArgv(['python3', '{entry}', '{args}'], ['app.py', 'lib.py'], ['1'], defaults), ['python3', 'app.py', '1']);
  assert.deepEqual(runArgv(['./a.out', '{args}'], ['a.c'], [], defaults), ['./a.out']);
  assert.deepEqual(runArgv(['sh', '-c', 'echo {files}'], ['a'], [], defaults), ['sh', '-c', 'echo {files}'], 'only whole elements expand');
  assert.deepEqual(compileArgv({ argv: ['tool', 'constructor', 'toString', '__proto__', '{files}'] }, ['a'], [], defaults), ['tool', 'constructor', 'toString', '__proto__', 'a'], 'no element is looked up as a property');
});

test("limit placeholders: a stage's own limits, anywhere in an argv element or an env value", () => {
  const limits = { memoryBytes: 128 * MiB, stackBytes: 64 * MiB, cpuCores: 1 };
  assert.equal(expandLimits('-Xmx{memoryMiB:75%}m', limits), '-Xmx96m');
  assert.equal(expandLimits('{memoryBytes}', limits), String(128 * MiB));
  assert.equal(expandLimits('{memoryMiB}', { ...limits, memoryBytes: 100 * MiB + 1 }), '100', 'MiB rounded down');
  assert.equal(expandLimits('{memoryBytes:90%}', limits), String(Math.floor(128 * MiB * 0.9)), 'a percentage rounded down to a whole byte');
  assert.equal(expandLimits('{memoryMiB:3%}', limits), '3');
  assert.equal(expandLimits('{memoryMiB:3%}', { ...limits, memoryBytes: 16 * MiB }), '1', 'at least 1: 0 would mean "unset" to most runtimes');
  assert.equal(expandLimits('{memoryMiB:100%}/{memoryMiB:1%}', limits), '128/1', 'every placeholder of a string');
  assert.deepEqual([0.5, 1, 1.5, 2].map((cpuCores) => expandLimits('{cpuCores}', { ...limits, cpuCores })), ['1', '1', '2', '2'], 'whole cores, rounded up: a thread count');
  // The stack limit, for runtimes whose stack is their own (a JVM's threads, V8's and Ruby's limits).
  assert.equal(expandLimits('-Xss{stackKiB}k', limits), '-Xss65536k');
  assert.equal(expandLimits('--stack-size={stackKiB:75%}', limits), '--stack-size=49152');
  assert.equal(expandLimits('{stackKiB}', { ...limits, stackBytes: 8 * 1024 + 1023 }), '8', 'KiB rounded down');
  assert.equal(expandLimits('{stackBytes:50%}', { ...limits, stackBytes: 8 * MiB + 1 }), String(4 * MiB), 'a percentage rounded down to a whole byte');
  assert.equal(expandLimits('{stackBytes}', limits), String(64 * MiB));
  // Nothing else is touched: text that is no placeholder, and the whole-element ones inside text.
  for (const text of ['{memoryMiB:0%}', '{memoryMiB:101%}', '{memoryMib}', '{cpuCores:50%}', '{stackMiB}', '{stackKiB:0%}', '{entry}', 'a{b}c', '${HOME}']) assert.equal(expandLimits(text, limits), text);
  // In argv, beside the whole-element placeholders; each stage with its own limits.
  const compile = { argv: ['javac', '-J-Xmx{memoryMiB:75%}m', '{args}', '{files}'] };
  assert.deepEqual(compileArgv(compile, ['Main.java'], ['-g'], { ...limits, memoryBytes: 1024 * MiB }), ['javac', '-J-Xmx768m', '-g', 'Main.java']);
  assert.deepEqual(runArgv(['java', '-Xmx{memoryMiB:75%}m', 'Main', '{args}'], ['Main.java'], ['{memoryMiB}'], limits), ['java', '-Xmx96m', 'Main', '{memoryMiB}'], "a job's arguments are its own, never expanded");
  assert.deepEqual(runArgv(['node', '{entry}'], ['{memoryMiB}.js'], [], limits), ['node', '{memoryMiB}.js'], "nor are its files' names");
  // env: the same object where no value names a limit (no copy on the job's path), else a copy.
  const plainEnv = { PATH: '/bin', HOME: '/tmp' };
  assert.equal(stageEnv(plainEnv, limits), plainEnv);
  const goEnv = { PATH: '/bin', GOMAXPROCS: '{cpuCores}', GOMEMLIMIT: '{memoryBytes:90%}' };
  assert.deepEqual(stageEnv(goEnv, { ...limits, memoryBytes: 100 * MiB, cpuCores: 2 }), { PATH: '/bin', GOMAXPROCS: '2', GOMEMLIMIT: String(Math.floor(100 * MiB * 0.9)) });
  assert.equal(goEnv.GOMEMLIMIT, '{memoryBytes:90%}', "the runtime's env is not changed");
  // The check of what execve copies (leastMemoryBytes) counts the strings the stage gets: expanded.
  const told: Runtime = { id: 'told', language: 'sh', version: '1', aliases: [], image: 'busybox', sourceFile: 'main.sh', run: { argv: ['/bin/sh', '-m{memoryBytes}', '{entry}'] },
    env: { M: '{memoryBytes:50%}', PADDING: 'x'.repeat(1_500_000) }, defaultLimits: { ...defaults, memoryBytes: 4 * MiB }, maxLimits: { ...maxima, memoryBytes: 4 * MiB }, helloWorld: { source: '', stdout: '' } };
  // Seven digits for any limit between 1e6 and 1e7 bytes, so the least is the same for all of them.
  const least = leastMemoryBytes(['/bin/sh', '-m2000000', 'main.sh'], envStrings({ M: '1000000', PADDING: told.env.PADDING! }));
  assert.throws(() => checkSubmission(told, { fileNames: ['main.sh'], args: [], limits: { memoryBytes: least - 1 } }), new RegExp(`^ExecutorError: limits.memoryBytes ${least - 1} is below ${least}:`));
  assert.equal(checkSubmission(told, { fileNames: ['main.sh'], args: [], limits: { memoryBytes: least } }).runLimits.memoryBytes, least);
});

test('output comparison: trailing whitespace per line and trailing empty lines do not count', () => {
  assert.equal(outputMatches('1 2 \n3\t\n\n\n', '1 2\n3'), true);
  // A stdout cut at the output limit passes no test: the program wrote more than is compared.
  assert.equal(testOutputPassed({ stdout: Buffer.from('x'.repeat(10)), stdoutTruncated: true }, { expectedOutput: 'x'.repeat(10) }, { mode: 'exact' }), false);
  assert.equal(testOutputPassed({ stdout: Buffer.from('x'.repeat(10)), stdoutTruncated: false }, { expectedOutput: 'x'.repeat(10) }, { mode: 'exact' }), true);
  assert.equal(outputMatches(Buffer.from('a\r\nb\r\n'), 'a\nb\n'), true);
  assert.equal(outputMatches('a\n\nb\n', 'a\nb\n'), false, 'inner empty lines count');
  assert.equal(outputMatches(' a\n', 'a\n'), false, 'leading whitespace counts');
  assert.equal(outputMatches('', '\n\n'), true);
  assert.equal(outputMatches('1\n', '2\n'), false);
});

test("output comparison, lines: Judge0's rule on bytes, trailing blanks as Ruby's rstrip has them", () => {
  // Ruby's rstrip removes NUL, tab, newline, vertical tab, form feed, carriage return and space.
  assert.equal(outputMatches('42\0\n', '42'), true);
  assert.equal(outputMatches(Buffer.from('42 \0\t\v\f\r\n1\0\n\0\n'), '42\n1'), true);
  assert.equal(outputMatches('a\r\nb\r\n', 'a\nb'), true, 'CRLF as LF');
  // Not the Unicode spaces that JavaScript's trimEnd removes too.
  assert.equal(outputMatches('42\u00a0', '42'), false, 'a no-break space');
  assert.equal(outputMatches(Buffer.from('42\u3000\n'), '42\n'), false, 'an ideographic space');
  assert.equal(outputMatches('42\ufeff', '42'), false, 'a byte order mark');
  assert.equal(outputMatches('42\u00a0', '42\u00a0'), true);
  // Bytes: an invalid UTF-8 byte is itself, not a replacement character that another would equal.
  assert.equal(outputMatches(Buffer.from([0x61, 0xff, 0x0a]), 'a\ufffd\n'), false);
  assert.equal(outputMatches(Buffer.from([0x61, 0xfe]), Buffer.from([0x61, 0xff]).toString('utf8')), false);
  assert.equal(outputMatches(Buffer.from('é\n'), 'é'), true);
});

test("output comparison against a lossy UTF-8 reading (an earlier API's text for bytes that are not UTF-8): stdout read the same way, in `lines`", () => {
  // Python writing ff fe 41 0a, against Judge0's expected_output //5BCg== as an earlier API sent it.
  const stdout = Buffer.from([0xff, 0xfe, 0x41, 0x0a]);
  const lossy = '\ufffd\ufffdA\n';
  assert.equal(stdout.toString('utf8'), lossy, 'the reading the API made');
  assert.equal(outputMatches(stdout, lossy, undefined, 'lossy-utf8'), true);
  assert.equal(outputMatches(stdout, lossy), false, 'as bytes, U+FFFD is not ff');
  assert.equal(testOutputPassed({ stdout, stdoutTruncated: false }, { expectedOutput: lossy, expectedOutputReading: 'lossy-utf8' }), true);
  assert.equal(testOutputPassed({ stdout, stdoutTruncated: false }, { expectedOutput: lossy }), false);
  // As the workers it was made for read it: any invalid byte, or a real U+FFFD, stands for one.
  assert.equal(outputMatches(Buffer.from([0x80, 0xc3, 0x41, 0x20, 0x0a]), lossy, undefined, 'lossy-utf8'), true);
  assert.equal(outputMatches(Buffer.from(lossy), lossy, undefined, 'lossy-utf8'), true);
  assert.equal(outputMatches(Buffer.from([0xff, 0x41, 0x0a]), lossy, undefined, 'lossy-utf8'), false, 'one U+FFFD short');
  assert.equal(outputMatches(Buffer.from([0xff, 0xfe, 0x42, 0x0a]), lossy, undefined, 'lossy-utf8'), false);
  // Only `lines` reads it so: `exact` and `tokens` compared bytes in those workers too.
  assert.equal(outputMatches(stdout, lossy, { mode: 'exact' }, 'lossy-utf8'), false);
  assert.equal(outputMatches(stdout, lossy, { mode: 'tokens' }, 'lossy-utf8'), false);
});

test('output comparison with an expected output given as bytes (not UTF-8): byte for byte, in every mode', () => {
  const ff = Buffer.from([0xff, 0x0a]);
  // Python's sys.stdout.buffer.write(b"\xff\n") against Judge0's expected_output /wo= (base64).
  assert.equal(outputMatches(Buffer.from([0xff, 0x0a]), ff), true);
  assert.equal(outputMatches(Buffer.from([0xff]), ff), true, 'a trailing newline does not count');
  assert.equal(outputMatches(Buffer.from([0xff, 0x20, 0x0d, 0x0a, 0x0a]), ff), true, 'nor trailing blanks');
  assert.equal(outputMatches(Buffer.from([0xfe, 0x0a]), ff), false, 'another invalid byte');
  assert.equal(outputMatches(Buffer.from('\ufffd\n'), ff), false, 'nor the replacement character');
  assert.equal(outputMatches('\ufffd\n', ff), false);
  // The text form of these bytes is what a job carried before: U+FFFD, which 0xff never matched.
  assert.equal(outputMatches(Buffer.from([0xff, 0x0a]), ff.toString('utf8')), false);
  // A Uint8Array that is no Buffer, and a view into a larger buffer, are read as the bytes they show.
  assert.equal(outputMatches(Buffer.from([0x61, 0xff]), new Uint8Array([0x61, 0xff, 0x0a])), true);
  const larger = Buffer.from([0x00, 0x61, 0xff, 0x00]);
  assert.equal(outputMatches(Buffer.from([0x61, 0xff]), larger.subarray(1, 3)), true);
  assert.equal(outputMatches(Buffer.from([0x61, 0xff]), new Uint8Array(larger.buffer, larger.byteOffset + 1, 2)), true);
  // UTF-8 given as bytes compares as its text does.
  assert.equal(outputMatches('é 1\n', Buffer.from('é 1')), true);
  const exact = { mode: 'exact' } as const;
  assert.equal(outputMatches(Buffer.from([0xff, 0x0a]), ff, exact), true);
  assert.equal(outputMatches(Buffer.from([0xff]), ff, exact), false);
  assert.equal(outputMatches(Buffer.from([0xfe, 0x0a]), ff, exact), false);
  const tokens = { mode: 'tokens' } as const;
  assert.equal(outputMatches(Buffer.from([0x20, 0xff, 0x0a, 0x31]), Buffer.from([0xff, 0x20, 0x31]), tokens), true);
  assert.equal(outputMatches(Buffer.from([0xfe, 0x20, 0x31]), Buffer.from([0xff, 0x20, 0x31]), tokens), false);
});

test('output comparison, exact: the same bytes', () => {
  const exact = { mode: 'exact' } as const;
  assert.equal(outputMatches(Buffer.from('é 1\n'), 'é 1\n', exact), true);
  assert.equal(outputMatches('é 1\n', 'é 1\n', exact), true);
  assert.equal(outputMatches('1 \n', '1\n', exact), false);
  assert.equal(outputMatches('1\n', '1', exact), false);
  assert.equal(outputMatches(Buffer.from('a\r\n'), 'a\n', exact), false);
});

test('output comparison, tokens: the same words in any layout; numbers within floatTolerance', () => {
  const tokens = { mode: 'tokens' } as const;
  assert.equal(outputMatches('1  2\n3\r\n\n\t', ' 1\n2 3', tokens), true);
  assert.equal(outputMatches('1 2', '2 1', tokens), false, 'order counts');
  assert.equal(outputMatches('1 2 3', '1 2', tokens), false, 'a word more');
  assert.equal(outputMatches('1 2', '1 2 3', tokens), false, 'a word less');
  assert.equal(outputMatches('', ' \n', tokens), true);
  assert.equal(outputMatches('a\u00a0b', 'a b', tokens), false, 'a no-break space is part of a word');
  assert.equal(outputMatches('1\v2', '1 2', tokens), false, "a vertical tab is not one of testlib's blanks");
  assert.equal(outputMatches(Buffer.from([0x61, 0xff]), 'a\ufffd', tokens), false, 'an invalid byte is itself, not a replacement character');
  assert.equal(outputMatches(Buffer.from([0xff]), Buffer.from([0xfe]).toString('latin1'), tokens), false);
  assert.equal(outputMatches(Buffer.from('é'), 'é', tokens), true);
  assert.equal(outputMatches('1.0', '1', tokens), false, 'without a tolerance, numbers are words');
  const close = { mode: 'tokens', floatTolerance: 1e-6 } as const;
  assert.equal(outputMatches('0.333333', '0.3333333333', close), true);
  assert.equal(outputMatches('1.0000011', '1', close), false);
  assert.equal(outputMatches('1000000.5', '1000000', close), true, 'relative to the expected number');
  assert.equal(outputMatches('-1000000.5', '-1000000', close), true, 'relative to a negative one');
  assert.equal(outputMatches('1000002', '1000000', close), false);
  assert.equal(outputMatches('0.000001', '0', close), true, 'absolute around zero');
  assert.equal(outputMatches('0.0000011', '0', close), false);
  assert.equal(outputMatches('-2.5e-7 .5 +3 1. 00012 -0 1E+05', '0 0.5 3.0 1 12 0 100000', close), true, "a number's forms");
  assert.equal(outputMatches('YES 1.0', 'yes 1', close), false, 'other words as text');
  assert.equal(outputMatches('nan', 'nan', close), true);
  assert.equal(outputMatches('inf', '1e400', close), false);
  assert.equal(outputMatches('1e400', '1e400', close), true, 'beyond a double: the same text only');
  assert.equal(outputMatches('2e400', '1e400', close), false);
  assert.equal(outputMatches('0x10', '16', close), false);
  // Exactly at the tolerance, where the doubles differ by a rounding step more: the slack.
  assert.equal(outputMatches('1.1', '1', { mode: 'tokens', floatTolerance: 0.1 }), true);
  assert.equal(outputMatches('1000.1', '1000', { mode: 'tokens', floatTolerance: 1e-4 }), true);
  assert.equal(outputMatches('1000.1000001', '1000', { mode: 'tokens', floatTolerance: 1e-4 }), false);
});

test("output comparison ends on the program's worst words and lines (no quadratic regex)", async () => {
  // A line of spaces before a word, a word of digits before a letter: backtracking regexes took
  // 4.5 s on 100,000 characters here, and about 70 s on these; each is milliseconds now. In a
  // child, since a comparison that blocks this process could not be timed out from it.
  const script = [
    `import { outputMatches } from ${JSON.stringify(new URL('../../src/executor/compare.ts', import.meta.url).href)};`,
    "const close = { mode: 'tokens', floatTolerance: 1e-6 };",
    "console.log(outputMatches(`a${' '.repeat(400_000)}b\\n`, 'a b\\n'), outputMatches(`${'1'.repeat(400_000)}x`, '1', close), outputMatches(`${'1'.repeat(400)} 2`, `${'1'.repeat(400)} 2`, close));",
    // Ruby's blanks, NUL among them, before a word; and as many on every one of many lines.
    "console.log(outputMatches(Buffer.from(`a${' \\0\\t'.repeat(150_000)}b\\n`), 'a b\\n'), outputMatches(`${'x \\0\\n'.repeat(100_000)}`, 'x\\n'.repeat(100_000)));",
  ].join('\n');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 15_000 });
  assert.equal(stdout, 'false false true\nfalse true\n');
});

test('verdicts: compile failures, and the first failing run', () => {
  assert.equal(verdictAfterCompile('ok'), undefined);
  assert.equal(verdictAfterCompile('runtime_error'), 'compile_error');
  assert.equal(verdictAfterCompile('cpu_time_limit'), 'compile_error');
  assert.equal(verdictAfterCompile('internal_error'), 'internal_error');
  assert.equal(verdictAfterCompile('cancelled'), 'cancelled');
  assert.equal(verdictOfRuns(['ok', 'ok']), 'ok');
  assert.equal(verdictOfRuns(['ok', 'wall_time_limit', 'runtime_error']), 'wall_time_limit');
});

// A stopping worker hands such a job on and keeps any other's result (worker.ts).
test('a job cut short by a cancel: its verdict or any stage\'s is cancelled', () => {
  const stage = (verdict: string) => ({ verdict }) as unknown as StageResult;
  const runtime = { id: 'c', language: 'c', version: '12' };
  assert.equal(cutShortByCancel({ verdict: 'ok', runtime, compile: stage('ok'), run: stage('ok') }), false, 'ended by itself');
  assert.equal(cutShortByCancel({ verdict: 'runtime_error', runtime, run: stage('runtime_error') }), false);
  assert.equal(cutShortByCancel({ verdict: 'cancelled', runtime, run: stage('cancelled') }), true);
  assert.equal(cutShortByCancel({ verdict: 'cancelled', runtime, compile: stage('cancelled') }), true);
  // A cancel of the last test leaves the job an earlier test's verdict.
  const tests = [{ ...stage('runtime_error'), passed: false }, { ...stage('cancelled'), passed: null }];
  assert.equal(cutShortByCancel({ verdict: 'runtime_error', runtime, tests }), true);
  const judged = [{ ...stage('ok'), passed: null, interactor: stage('cancelled') }];
  assert.equal(cutShortByCancel({ verdict: 'ok', runtime, tests: judged }), true, "an interactor's cancel");
});

// The executor looks through every one-shot job's stages for a descriptor shortage.
test("findInStages: the compiles, the run, then each test with its judge programs' runs, in that order, until one gives something", () => {
  const stage = (name: string) => ({ name }) as unknown as StageResult;
  const nameOf = (found: StageResult) => (found as unknown as { name: string }).name;
  const runtime = { id: 'c', language: 'c', version: '12' };
  const result: ExecuteResult = {
    verdict: 'ok',
    runtime,
    compile: stage('compile'),
    interactorCompile: stage('interactor compile'),
    checkerCompile: stage('checker compile'),
    run: stage('run'),
    tests: [
      { ...stage('test 1'), passed: true, interactor: stage('interactor 1'), checker: stage('checker 1') },
      { ...stage('test 2'), passed: true, checker: stage('checker 2') },
    ],
  };
  const seen: string[] = [];
  assert.equal(findInStages(result, (found) => void seen.push(nameOf(found))), undefined);
  assert.deepEqual(seen, ['compile', 'interactor compile', 'checker compile', 'run', 'test 1', 'interactor 1', 'checker 1', 'test 2', 'checker 2']);
  seen.length = 0;
  const picked = findInStages(result, (found) => (seen.push(nameOf(found)), nameOf(found) === 'interactor 1' ? 'picked' : undefined));
  assert.equal(picked, 'picked');
  assert.deepEqual(seen, ['compile', 'interactor compile', 'checker compile', 'run', 'test 1', 'interactor 1'], 'none looked at after it');
  assert.equal(findInStages({ verdict: 'internal_error', runtime }, () => 'any'), undefined, 'a result without stages');
});

test('output files: a name the file system refuses reads as not found', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellblock-output-files-'));
  try {
    writeFileSync(join(dir, 'a.txt'), 'A');
    assert.deepEqual(
      readOutputFiles(dir, ['a.txt', 'x'.repeat(300)], 10).map((file) => [file.content?.toString() ?? null, file.problem ?? null]),
      [['A', null], [null, 'not_found']],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => checkedFileName(`lib/${'é'.repeat(128)}`), /has a part longer than 255 bytes/);
  assert.equal(checkedFileName(`lib/${'é'.repeat(127)}`), `lib/${'é'.repeat(127)}`);
  // A path of such parts, up to 1024 bytes in all: written under the worker's work dir, whose own
  // host path has the rest of PATH_MAX (4096).
  const longest = `${Array.from({ length: 4 }, () => 'é'.repeat(127)).join('/')}/${'d'.repeat(1024 - 4 * 255)}`;
  assert.equal(Buffer.byteLength(longest), 1024);
  assert.equal(checkedFileName(longest), longest);
  assert.throws(() => checkedFileName(`${longest}d`), /is 1025 bytes long, more than 1024/);
});

test('file names: relative paths inside the work dir only', () => {
  assert.equal(checkedFileName('src/./main.c'), 'src/main.c');
  assert.equal(checkedFileName('a/-x.c'), 'a/-x.c', 'a dash inside a path is no option');
  for (const bad of ['', '/etc/passwd', '../x', 'a/../../x', 'a/../b', '.', 'a\0b', '-wrapper', './-o', '@args', '-']) {
    assert.throws(() => checkedFileName(bad), ExecutorError, bad);
  }
  // A lone surrogate: U+FFFD on disk, where "a\ud800" and "a\udc00" would be one file. A pair is
  // one character (an emoji), taken.
  for (const name of ['a\ud800', 'a\udc00', 'dir/\udbff.txt']) assert.throws(() => checkedFileName(name), /is not valid Unicode \(it holds a lone surrogate\)/);
  assert.equal(checkedFileName('a\ud83d\ude00.txt'), 'a\ud83d\ude00.txt');
});

const rootSkip = process.getuid?.() !== 0 ? 'needs root (chown to the sandbox user)' : undefined;

test('work dirs: files owned by the sandbox user; a copy never follows links', { skip: rootSkip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellblock-exectest-'));
  try {
    const owner = { uid: 60000, gid: 60000 };
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    mkdirSync(a);
    mkdirSync(b);
    {
      writeSourceFiles(a, [
        { name: 'main.c', content: Buffer.from('int main(){}') },
        { name: 'lib/util.h', content: Buffer.from('#pragma once') },
      ], owner);
      assert.equal(statSync(join(a, 'main.c')).uid, 60000);
      assert.equal(statSync(join(a, 'lib')).uid, 60000);
      assert.equal(readFileSync(join(a, 'lib/util.h'), 'utf8'), '#pragma once');
      assert.throws(() => writeSourceFiles(a, [{ name: 'main.c', content: Buffer.from('') }], owner), ExecutorError);
      // What a compile might leave: an executable, a link to a host file, a fifo.
      writeFileSync(join(a, 'a.out'), 'ELF', { mode: 0o755 });
      symlinkSync('/etc/shadow', join(a, 'leak'));
      execFileSync('mkfifo', [join(a, 'pipe')]);
      await copyWorkDir(a, b, owner);
      assert.equal(statSync(join(b, 'a.out')).mode & 0o777, 0o755);
      assert.equal(statSync(join(b, 'a.out')).uid, 60000);
      assert.equal(lstatSync(join(b, 'leak')).isSymbolicLink(), true);
      assert.equal(readlinkSync(join(b, 'leak')), '/etc/shadow');
      assert.equal(lstatSync(join(b, 'leak')).uid, 60000);
      assert.equal(statSync('/etc/shadow').uid, 0, 'the link target was not chowned');
      assert.equal(existsSync(join(b, 'pipe')), false);
      assert.equal(readFileSync(join(b, 'lib/util.h'), 'utf8'), '#pragma once');
    }
    {
      // Names that are not UTF-8 (a compile may leave any bytes but '/' and NUL), and a link whose
      // target is not either: copied byte for byte, not failed as a file not found.
      const c = join(dir, 'c');
      const d = join(dir, 'd');
      mkdirSync(c);
      mkdirSync(d);
      const bytesPath = (root: string, ...names: Buffer[]) => Buffer.concat([Buffer.from(root), ...names.flatMap((name) => [Buffer.from('/'), name])]);
      const odd = Buffer.from([0x62, 0x61, 0x64, 0xff, 0x6e]);
      mkdirSync(bytesPath(c, odd));
      writeFileSync(bytesPath(c, odd, odd), 'inside');
      symlinkSync(Buffer.from([0x2f, 0xfe]), bytesPath(c, Buffer.from('link')));
      await copyWorkDir(c, d, owner);
      assert.equal(readFileSync(bytesPath(d, odd, odd), 'utf8'), 'inside');
      assert.equal(statSync(bytesPath(d, odd, odd)).uid, 60000);
      assert.deepEqual(readlinkSync(bytesPath(d, Buffer.from('link')), { encoding: 'buffer' }), Buffer.from([0x2f, 0xfe]));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a compile's work dir is copied into a run's only up to MAX_COMPILED_TREE_BYTES, a sparse file counted at its whole size: beyond, a CompiledFilesError", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cellblock-exectest-'));
  try {
    const owner = { uid: 60000, gid: 60000 };
    const [compiled, run, runAgain] = ['compiled', 'run', 'run-again'].map((name) => join(dir, name));
    for (const made of [compiled, run, runAgain]) mkdirSync(made!);
    writeFileSync(join(compiled!, 'main'), 'ELF', { mode: 0o755 });
    await copyCompiledWorkDir(compiled!, run!, owner);
    assert.equal(readFileSync(join(run!, 'main'), 'utf8'), 'ELF');
    // Holes cost the compile nothing, and the copy would write them out in the run's tmpfs.
    writeFileSync(join(compiled!, 'holes'), '');
    truncateSync(join(compiled!, 'holes'), MAX_COMPILED_TREE_BYTES);
    await assert.rejects(copyCompiledWorkDir(compiled!, runAgain!, owner), (error: unknown) => error instanceof CompiledFilesError && /more than 134217728 bytes/.test(error.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a slot key's start-up paths are those of every stage run on its slots, each once", () => {
  const base = { language: 'x', version: '1', aliases: [], sourceFile: 'main.x', env: {}, defaultLimits: defaults, maxLimits: maxima, helloWorld: { source: '', stdout: '' } };
  const c: Runtime = { ...base, id: 'c', image: 'gcc', compile: { argv: ['cc', '{files}'], startupPaths: ['/usr/bin/cc', '/usr/include/stdio.h'] }, run: { argv: ['./main'], startupPaths: ['/lib/libc.so.6'] } };
  const cpp: Runtime = { ...base, id: 'cpp', image: 'gcc', compile: { argv: ['c++', '{files}'], startupPaths: ['/usr/bin/c++', '/usr/include/stdio.h'] }, run: { argv: ['./main'] } };
  const bash: Runtime = { ...base, id: 'bash', image: 'base', run: { argv: ['/bin/bash', 'main.x'] } };
  const byKey = startupPathsBySlotKey([c, cpp, bash]);
  assert.deepEqual([...byKey.keys()].sort(), ['gcc', 'gcc:compile', 'gcc:connected']);
  assert.deepEqual(byKey.get('gcc:compile'), ['/usr/bin/cc', '/usr/include/stdio.h', '/usr/bin/c++']);
  assert.deepEqual(byKey.get('gcc'), ['/lib/libc.so.6']);
  assert.deepEqual(byKey.get('gcc:connected'), ['/lib/libc.so.6'], "an interactive test's runs are runs");
  // A variant's stages run on its runtime's image: their paths are looked up in its slots too.
  const java: Runtime = { ...base, id: 'java', image: 'java', compile: { argv: ['javac', '{files}'], startupPaths: ['/usr/bin/javac'] }, run: { argv: ['java', 'Main'], startupPaths: ['/usr/bin/java'] },
    variants: { piston: { run: { argv: ['java', '{entry}'], startupPaths: ['/usr/bin/java', '/usr/lib/jvm/lib/ct.sym'] } } } };
  const withVariant = startupPathsBySlotKey([java]);
  assert.deepEqual(withVariant.get('java'), ['/usr/bin/java', '/usr/lib/jvm/lib/ct.sym']);
  assert.deepEqual(withVariant.get('java:connected'), ['/usr/bin/java', '/usr/lib/jvm/lib/ct.sym']);
  assert.deepEqual(withVariant.get('java:compile'), ['/usr/bin/javac']);
});

test('slot keys: runs under the image, compiles and connected runs beside; only connected slots are roots alone', () => {
  assert.deepEqual((['run', 'compile', 'connected'] as const).map((stage) => slotKey('gcc', stage)), ['gcc', 'gcc:compile', 'gcc:connected']);
  assert.deepEqual(['gcc', 'gcc:compile', 'gcc:connected'].map(imageOfSlotKey), ['gcc', 'gcc', 'gcc']);
  assert.deepEqual(['gcc', 'gcc:compile', 'gcc:connected'].map(slotHoldsContainer), [true, true, false]);
});
