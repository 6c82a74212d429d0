// What execute() refuses, checked without running anything. The worker's executor calls it before
// a job takes a slot; the API calls it before the job is queued, whichever front translated it, so
// that a job the API accepts is one a worker can run (the check is the same code in both places).
import type { Runtime } from '../images/types.js';
import { variantOf } from '../images/variants.js';
// From spec.ts, not the sandbox's index: the index loads the native addon, which an API-only host
// (that runs this check too) does not build.
import { checkLimits, envStrings, EXEC_MEMORY_RESERVE_BYTES, leastMemoryBytes, terminalSizeFault } from '../sandbox/spec.js';
import { SandboxSpecError, type Limits, type TerminalSize } from '../sandbox/types.js';
import { ExecutorError } from './errors.js';
import { posix } from 'node:path';
import { ARGS_PLACEHOLDER, compileArgv, compiledFileNames, runArgv, stageEnv } from './argv.js';
import { COMPARISON_MODES } from './compare.js';
import { checkedFileName, fileNamesConflict, shownUnits } from './files.js';

export { FILE_NAME_MAX_BYTES, hasLoneSurrogate, NAME_MAX_BYTES, OPTION_LIKE_FILE_NAME, shownFileName, shownUnits } from './files.js';

/** The most CELLBLOCK_MAX_FILES, _ARGS, _TESTS and _BATCH_JOBS may be set to, and the request
 * schemas' maxItems on the lists they count: without a schema bound, TypeBox checked every item of
 * a 4 MiB body's `args` of 10^6 numbers (~1.3 s of event loop, every other client waiting) before
 * the policy refused the count. At this bound the schema cannot refuse a count the policy accepts,
 * so a list within it still gets the policy's own refusal (too_many_tests for 10^4 tests). */
export const MAX_LIST_ITEMS = 100_000;
export { compileArgv, runArgv } from './argv.js';
export { defaultStageLimits } from './limits.js';
import { defaultCompileLimits, effectiveLimits, wallTimeMsForCpuTimeMs } from './limits.js';
import { namesLimit } from '../images/placeholders.js';

/** The least memory limit of any stage (the engine's; leastMemoryBytes adds the stage's argv and
 * env to it). */
export const MIN_MEMORY_BYTES = EXEC_MEMORY_RESERVE_BYTES;

export interface SubmissionShape {
  fileNames: string[];
  args: string[];
  /** Arguments for the compile, where its argv has `{args}`; only for a runtime with a compile. */
  compileArgs?: string[];
  /** ExecuteRequest.compileEntryOnly. */
  compileEntryOnly?: boolean;
  /** ExecuteRequest.outputFiles. */
  outputFiles?: string[];
  limits?: Partial<Limits>;
  compileLimits?: Partial<Limits>;
  /** How many times it runs (its tests); 1 when absent. */
  runs?: number;
  /** Where these fields sit in the request, for messages: "" (default) for the program's, a judge
   * program's "checker." or "interactor.". */
  fieldPrefix?: string;
  /** How the request names a limit in messages, where a front's fields are not ours (Piston's
   * `run_memory_limit`); `<fieldPrefix><stage>.<limit>` when absent, or where it gives none. */
  limitFieldName?: LimitFieldName;
  /** The runtime's variant that runs it (ExecuteRequest.variant); absent: the runtime's own stages. */
  variant?: string;
}

/** The request's name for one limit of a stage: /v1's `limits.memoryBytes`, Piston's
 * `run_memory_limit`; undefined where the request has no field that sets it (a message then names
 * it as /v1 does, and a hint of what to lower leaves it out). */
export type LimitFieldName = (stage: 'limits' | 'compileLimits', limit: keyof Limits) => string | undefined;

export interface CheckedSubmission {
  /** The runtime as it runs the job: its variant's (variantOf) where the job names one. */
  runtime: Runtime;
  /** Normalised, in the submitted order. */
  fileNames: string[];
  runLimits: Limits;
  /** Present when the runtime has a compile step. */
  compileLimits?: Limits;
  /** How many times it runs (SubmissionShape.runs). */
  runs: number;
  /** What the compile's `{files}` (or `{entry}`) is drawn from: every file, or the entry alone (compileEntryOnly). */
  compileSources: string[];
  /** The output files, normalised (as fileNames are), in the asked order. */
  outputFiles: string[];
  /** The most output the job could store: each stage's outputBytes (stdout and stderr together),
   * for the compile and every run, and every run's output files, each up to the run's outputBytes. */
  mostOutputBytes: number;
}

export function checkSubmission(named: Runtime, submission: SubmissionShape): CheckedSubmission {
  // Everything below checks the stages that will run: a variant's argv and limits as any runtime's.
  const runtime = submission.variant === undefined ? named : variantOf(named, submission.variant);
  if (runtime === undefined) throw new ExecutorError('unknown_variant', `runtime "${named.id}" has no variant ${shownVariant(submission.variant)}`);
  if (!Array.isArray(submission.fileNames) || submission.fileNames.length === 0) {
    throw new ExecutorError('bad_request', 'a submission needs at least one file');
  }
  const fileNames = submission.fileNames.map((name) => checkedFileName(name));
  const conflict = fileNamesConflict(fileNames);
  if (conflict) throw new ExecutorError('bad_request', conflict);
  const prefix = submission.fieldPrefix ?? '';
  checkArgs(submission.args, `${prefix}args`);
  const compileArgs = submission.compileArgs ?? [];
  checkArgs(compileArgs, `${prefix}compileArgs`);
  if (compileArgs.length > 0) {
    const problem = compileArgsProblem(runtime);
    if (problem) throw new ExecutorError('bad_request', problem);
  }
  const limitField = (stage: 'limits' | 'compileLimits', limit: keyof Limits): string => submission.limitFieldName?.(stage, limit) ?? `${prefix}${stage}.${limit}`;
  const defaults = runtimeDefaults(runtime);
  const namesLimits = namesAny(submission.limits);
  const runLimits = !namesLimits ? defaults.runLimits : sandboxLimits((limit) => limitField('limits', limit), effectiveLimits(runtime.defaultLimits, runtime.maxLimits, submission.limits));
  const compileLimits =
    defaults.compileLimits === undefined || !namesAny(submission.compileLimits)
      ? defaults.compileLimits
      : sandboxLimits((limit) => limitField('compileLimits', limit), effectiveLimits(defaults.compileLimits, runtime.maxLimits, submission.compileLimits));
  // Only limits the job names can be below the minima: a runtime's defaults are checked against
  // them when it loads (parseRuntime).
  const belowMinimum = !namesLimits ? undefined : limitBelowMinimum(runtime, runLimits);
  if (belowMinimum) {
    const field = limitField('limits', belowMinimum.name);
    throw new ExecutorError('bad_request', `${field} ${belowMinimum.value} is below ${belowMinimum.minimum}, the least runtime "${runtime.id}" starts with`);
  }
  enoughMemoryForExec(limitField('limits', 'memoryBytes'), runArgv(runtime.run.argv, fileNames, submission.args, runLimits), execEnv(runtime, defaults, runLimits), runLimits);
  const sources = submission.compileEntryOnly === true ? fileNames.slice(0, 1) : fileNames;
  if (runtime.compile && compiledFileNames(runtime.compile, sources).length === 0) {
    const which = sources === fileNames ? 'none of the files is' : 'the entry file (the only one compiled) is not';
    throw new ExecutorError('bad_request', `${which} a ${runtime.language} source for the compiler (a name ending in ${runtime.compile.sourceSuffixes!.join(', ')})`);
  }
  if (runtime.compile && compileLimits) {
    enoughMemoryForExec(limitField('compileLimits', 'memoryBytes'), compileArgv(runtime.compile, sources, compileArgs, compileLimits), execEnv(runtime, defaults, compileLimits), compileLimits);
  }
  const outputFiles = checkedOutputFiles(submission.outputFiles ?? []);
  const runs = submission.runs ?? 1;
  const mostOutputBytes = runLimits.outputBytes * runs * (1 + outputFiles.length) + (compileLimits?.outputBytes ?? 0);
  const checked: CheckedSubmission = { runtime, fileNames, compileSources: sources, runLimits, runs, outputFiles, mostOutputBytes };
  if (compileLimits) checked.compileLimits = compileLimits;
  return checked;
}

/** A problem's own program that judges each test (docs/theory-of-operation.md, "Judge
 * programs"): an interactor runs beside the program, connected to it; a checker runs after it, on
 * its output. */
export type JudgeRole = 'interactor' | 'checker';

/** The files a judge program finds in its work dir in each test, named as testlib's arguments
 * take them: the test's input; the output (a checker's: the program's stdout; an interactor's: a
 * file for its own, which nothing reads back); the test's expected output (a checker gets an empty
 * one where the test has none). */
export const JUDGE_FILES = { input: 'input.txt', output: 'output.txt', answer: 'answer.txt' } as const;

/** A judge program's arguments after its runtime's run argv (testlib's): an interactor's
 * `<input> <output> [<answer>]`, a checker's `<input> <output> <answer>`. */
export function judgeArgs(role: JudgeRole, hasAnswer: boolean): string[] {
  const { input, output, answer } = JUDGE_FILES;
  return role === 'checker' || hasAnswer ? [input, output, answer] : [input, output];
}

/** What an interactor's default wall time adds to the program's: both start together, and the
 * interactor still reads the program's last answer and judges after a program that ends at its
 * limit. */
export const INTERACTOR_WALL_MARGIN_MS = 1000;

/** A judge program as either side holds it (the executor's request, the queued job's): only its
 * files' names are read. */
export interface JudgeProgramShape {
  files: readonly { name: string }[];
  compileArgs?: string[];
  limits?: Partial<Limits>;
  compileLimits?: Partial<Limits>;
}

/** Why a judge program may not have a file of this name (one of JUDGE_FILES, or a path inside
 * one), or undefined. */
export function judgeFileNameProblem(role: JudgeRole, name: string): string | undefined {
  const reserved: string[] = Object.values(JUDGE_FILES);
  const first = typeof name === 'string' ? posix.normalize(name).split('/')[0]! : '';
  if (!reserved.includes(first)) return undefined;
  return `${role} file ${JSON.stringify(name)}: ${reserved.join(', ')} are the files each test gives the ${role}`;
}

/** A job's judge program, checked as a submission of its own that runs once per test with
 * judgeArgs; its files may not take the names of JUDGE_FILES. `runs` is the job's test count (a
 * judge program needs tests: judgedJobProblem). Where an interactor's limits name no wall time, it
 * gets at least the program's and INTERACTOR_WALL_MARGIN_MS more (`programWallTimeMs`, up to its
 * runtime's maximum): it waits for the program, and one killed while a valid program is still
 * thinking, or reading its last answer, would judge nothing. */
export function checkJudgeProgram(role: JudgeRole, runtime: Runtime, judge: JudgeProgramShape, runs: number, programWallTimeMs: number): CheckedSubmission {
  const fileNames = Array.isArray(judge.files) ? judge.files.map((file) => file.name) : [];
  for (const name of fileNames) {
    const problem = judgeFileNameProblem(role, name);
    if (problem) throw new ExecutorError('bad_request', problem);
  }
  const shape: SubmissionShape = { fileNames, args: judgeArgs(role, true), runs, fieldPrefix: `${role}.` };
  if (judge.compileArgs !== undefined) shape.compileArgs = judge.compileArgs;
  // The wall time its own limits give it: its default, or more where they name a CPU time.
  const cpuTimeMs = judge.limits?.cpuTimeMs;
  const ownWallTimeMs = cpuTimeMs === undefined ? runtime.defaultLimits.wallTimeMs : wallTimeMsForCpuTimeMs(runtime.defaultLimits, runtime.maxLimits, cpuTimeMs);
  const programsWallTimeMs = programWallTimeMs + INTERACTOR_WALL_MARGIN_MS;
  if (role === 'interactor' && judge.limits?.wallTimeMs === undefined && programsWallTimeMs > ownWallTimeMs) {
    shape.limits = { ...judge.limits, wallTimeMs: Math.min(programsWallTimeMs, runtime.maxLimits.wallTimeMs) };
  } else if (judge.limits !== undefined) {
    shape.limits = judge.limits;
  }
  if (judge.compileLimits !== undefined) shape.compileLimits = judge.compileLimits;
  return checkSubmission(runtime, shape);
}

/** What a judge program needs of the job it is part of, or undefined: tests (it judges each);
 * an interactor, the program's stdin and stdout free for the pipes; a checker, no interactor (an
 * interactive job's program's output is its interactor's to judge). */
export function judgedJobProblem(job: {
  tests?: unknown[];
  stdinBytes: number;
  stderrToStdout?: boolean;
  interactor: boolean;
  checker: boolean;
}): { role: JudgeRole; message: string } | undefined {
  for (const role of ['interactor', 'checker'] as const) {
    if (job[role] && job.tests === undefined) return { role, message: `${role === 'interactor' ? 'an' : 'a'} ${role} judges tests: give tests` };
  }
  if (job.checker && job.interactor) return { role: 'checker', message: "a checker does not apply to an interactive job: the program's output is its interactor's to judge" };
  if (!job.interactor) return undefined;
  if (job.stdinBytes > 0) {
    return { role: 'interactor', message: "an interactive job's stdin is its interactor's output: give each test's input as its stdin, which the interactor reads as a file" };
  }
  if (job.stderrToStdout === true) {
    return { role: 'interactor', message: "stderrToStdout does not apply to an interactive job: the program's stdout is its interactor's input" };
  }
  return undefined;
}

/** Why a job cannot run live, or undefined: a live job is one run whose stdin and output are
 * streams, so nothing that runs it more than once, feeds it from elsewhere or merges its streams. */
export function liveJobProblem(job: { tests?: unknown[]; interactor?: unknown; checker?: unknown; stderrToStdout?: boolean }): string | undefined {
  if (job.tests !== undefined) return 'a live job is one run whose stdin comes from its session: it takes no tests';
  if (job.interactor !== undefined || job.checker !== undefined) return 'a live job has no judge program: its stdin and output are its client\'s';
  if (job.stderrToStdout === true) return 'stderrToStdout does not apply to a live job: its stdout and stderr come to the client as two streams';
  return undefined;
}

/** Why a live job's terminal size cannot be a terminal's (the engine's rule), or undefined. */
export function terminalSizeProblem(size: unknown): string | undefined {
  const fault = terminalSizeFault(size);
  return fault && `${fault.field} ${fault.reason}`;
}

/** The same rule as a type guard, for sizes that come as JSON. */
export function isTerminalSize(size: unknown): size is TerminalSize {
  return terminalSizeProblem(size) === undefined;
}

/** Why a job's comparison cannot be used, or undefined: a mode that is not one (the API's schema
 * says so first), a tolerance anywhere but in `tokens` or not a number of at least 0
 * (invalid_comparison); no tests to compare, or a judge program that judges in its place
 * (comparison_not_applicable). */
export function comparisonProblem(job: { comparison?: unknown; tests?: unknown[]; judged: boolean }): { code: 'invalid_comparison' | 'comparison_not_applicable'; message: string } | undefined {
  const comparison = job.comparison;
  if (comparison === undefined) return undefined;
  const invalid = (message: string) => ({ code: 'invalid_comparison' as const, message });
  if (comparison === null || typeof comparison !== 'object') return invalid('comparison must be an object: {mode, floatTolerance?}');
  const { mode, floatTolerance } = comparison as Record<string, unknown>;
  if (!(COMPARISON_MODES as readonly unknown[]).includes(mode)) return invalid(`comparison.mode must be one of ${COMPARISON_MODES.join(', ')}`);
  if (floatTolerance !== undefined) {
    if (mode !== 'tokens') return invalid('comparison.floatTolerance applies to mode "tokens" only: numbers are compared as the words of the output');
    if (typeof floatTolerance !== 'number' || !Number.isFinite(floatTolerance) || floatTolerance < 0) return invalid('comparison.floatTolerance must be a number of at least 0');
  }
  if (job.tests === undefined) return { code: 'comparison_not_applicable', message: "a comparison applies to the tests' expectedOutput: give tests" };
  if (job.judged) return { code: 'comparison_not_applicable', message: 'a comparison does not apply to a job with a checker or an interactor: its judge program judges each test' };
  return undefined;
}

/** A variant name as a message shows it: quoted, and cut as a file name is (whatever another
 * producer's job data holds there). */
function shownVariant(name: unknown): string {
  return shownUnits(JSON.stringify(name) ?? String(name));
}

/** The first of a run's limits below its runtime's minLimits, or undefined. */
export function limitBelowMinimum(runtime: Runtime, limits: Partial<Limits>): { name: keyof Limits; value: number; minimum: number } | undefined {
  if (!runtime.minLimits) return undefined;
  for (const [name, minimum] of Object.entries(runtime.minLimits) as [keyof Limits, number][]) {
    const value = limits[name];
    if (value !== undefined && value < minimum) return { name, value, minimum };
  }
  return undefined;
}

/** Why the runtime takes no compile arguments, or undefined when it does (its compile argv says
 * where they go, with `{args}`). */
export function compileArgsProblem(runtime: Runtime): string | undefined {
  if (!runtime.compile) return `runtime "${runtime.id}" has no compile step: compileArgs does not apply`;
  if (!runtime.compile.argv.includes(ARGS_PLACEHOLDER)) return `runtime "${runtime.id}" takes no compile arguments (its compile.argv has no "${ARGS_PLACEHOLDER}")`;
  return undefined;
}

function checkedOutputFiles(names: unknown): string[] {
  if (!Array.isArray(names)) throw new ExecutorError('bad_request', 'outputFiles must be an array of file names');
  const normal = names.map((name) => checkedFileName(name as string));
  const twice = normal.find((name, i) => normal.indexOf(name) !== i);
  if (twice !== undefined) throw new ExecutorError('bad_request', `output file ${JSON.stringify(twice)} is asked for twice`);
  return normal;
}

function checkArgs(args: unknown, what: string): void {
  if (!Array.isArray(args)) throw new ExecutorError('bad_request', `${what} must be an array of strings`);
  args.forEach((arg, i) => {
    // The kernel's execve ends each argument at its first NUL: refused, never silently cut.
    if (typeof arg !== 'string' || arg.includes('\0')) {
      throw new ExecutorError('bad_request', `${what}[${i}] must be a string without NUL bytes`);
    }
  });
}

/** Whether a job names any limit of its own: the queue gives a worker `{}` for none (its JobRequest
 * always has limits), which takes the runtime's defaults as absent limits do. */
function namesAny(limits: Partial<Limits> | undefined): boolean {
  if (limits === undefined) return false;
  for (const key in limits) if (limits[key as keyof Limits] !== undefined) return true;
  return false;
}

/** What checkSubmission derives from the runtime alone. */
interface RuntimeDefaults {
  /** The run's limits of a job that names none, checked. */
  runLimits: Limits;
  /** The compile's limits of a job that names none, checked; undefined without a compile. */
  compileLimits: Limits | undefined;
  /** The env as execve copies it, where it names no limit (then the same for every stage);
   * undefined where it does (execEnv expands it per stage). */
  env: readonly string[] | undefined;
}

/** Computed once per runtime: the API checks every job it accepts and the worker every job it
 * takes, on the job's path, where after an idle moment every call costs several times what it
 * costs in a loop (measured here: 2-5x). A job that names no limits of its own, the common case,
 * then takes none of the limits' arithmetic: its check took about half the time, between the
 * jobs of a burst and after 30 ms idle. Frozen, since every such job shares them; a runtime is
 * not changed once loaded. */
const runtimeDefaultsCache = new WeakMap<Runtime, RuntimeDefaults>();

function runtimeDefaults(runtime: Runtime): RuntimeDefaults {
  let defaults = runtimeDefaultsCache.get(runtime);
  if (defaults === undefined) {
    const compileLimits = defaultCompileLimits(runtime);
    defaults = Object.freeze({
      runLimits: Object.freeze(sandboxLimits((limit) => `limits.${limit}`, effectiveLimits(runtime.defaultLimits, runtime.maxLimits))),
      compileLimits: compileLimits && Object.freeze(sandboxLimits((limit) => `compileLimits.${limit}`, compileLimits)),
      env: Object.values(runtime.env).some(namesLimit) ? undefined : Object.freeze(envStrings(runtime.env)),
    });
    runtimeDefaultsCache.set(runtime, defaults);
  }
  return defaults;
}

/** A stage's env as execve copies it: its limit placeholders expanded with the stage's limits. */
function execEnv(runtime: Runtime, defaults: RuntimeDefaults, limits: Limits): readonly string[] {
  return defaults.env ?? envStrings(stageEnv(runtime.env, limits));
}

/** Why the job could store more output than `maximum` (CheckedSubmission.mostOutputBytes, in
 * words: "3 runs of up to N bytes and a compile of up to M could store ..."), or undefined. */
export function outputAboveMaximum(checked: CheckedSubmission, maximum: number, judges: { role: JudgeRole; checked: CheckedSubmission }[] = []): string | undefined {
  const mostOutputBytes = judges.reduce((sum, judge) => sum + judge.checked.mostOutputBytes, checked.mostOutputBytes);
  if (mostOutputBytes <= maximum) return undefined;
  const describe = ({ runs, runLimits, compileLimits, outputFiles }: CheckedSubmission) => {
    const compile = compileLimits ? ` and a compile of up to ${compileLimits.outputBytes}` : '';
    const files = outputFiles.length === 0 ? '' : ` (and as much for each of ${outputFiles.length} output file${outputFiles.length === 1 ? '' : 's'})`;
    return `${runs} run${runs === 1 ? '' : 's'} of up to ${runLimits.outputBytes} bytes${files}${compile}`;
  };
  const stages = [describe(checked), ...judges.map((judge) => `with a${judge.role === 'interactor' ? 'n' : ''} ${judge.role}'s ${describe(judge.checked)},`)].join(', ');
  return `${stages} could store ${mostOutputBytes} bytes of output; at most ${maximum} per job`;
}

/** The engine's own check of a stage's limits (a byte or pid count must be whole); `field` names
 * one of them as the request does. */
function sandboxLimits(field: (limit: keyof Limits) => string, limits: Limits): Limits {
  try {
    return checkLimits(limits);
  } catch (error) {
    if (!(error instanceof SandboxSpecError)) throw error;
    throw new ExecutorError('bad_request', `${field(error.field.replace(/^limits\./, '') as keyof Limits)} ${error.reason}`);
  }
}

/** The engine refuses a stage whose memory limit could not hold what execve copies (its argv and
 * env) inside the run's cgroup (leastMemoryBytes): said here, before the job is queued. */
function enoughMemoryForExec(field: string, argv: string[], env: readonly string[], limits: Limits): void {
  const least = leastMemoryBytes(argv, env);
  if (limits.memoryBytes >= least) return;
  throw new ExecutorError(
    'bad_request',
    `${field} ${limits.memoryBytes} is below ${least}: the program's arguments, file names and environment take ${least - EXEC_MEMORY_RESERVE_BYTES} bytes, which must fit in its memory limit with ${EXEC_MEMORY_RESERVE_BYTES} to spare`,
  );
}
