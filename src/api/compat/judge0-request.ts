// A Judge0 CE submission (POST /submissions body) → our JobRequest, validated as Judge0's
// Submission model does (app/models/submission.rb): every failing attribute is collected and
// answered with 422 `{attribute: [messages]}` in Rails' words. Units are Judge0's: seconds,
// kilobytes; they become ours through src/units.ts.
import { compileArgsProblem } from '../../executor/check.js';
import { expectedOutputFields, type JobRequest } from '../../jobs/model.js';
import type { Limits } from '../../sandbox/types.js';
import { bytesToKiB, kibToBytes, msToSeconds, secondsToMs } from '../../units.js';
import type { CountedList, FrontFields } from '../submission.js';
import type { AdditionalFiles } from './judge0-additional-files.js';
import type { Judge0Language, Judge0Languages } from './judge0-languages.js';
import { judge0Front, rubyDecimal } from './judge0-request-attributes.js';
import { stageMaxima } from './stage-maxima.js';

/** Judge0's limits that are not per runtime (app/helpers/config.rb defaults). */
const JUDGE0_MAX_NUMBER_OF_RUNS = 20;

/** The most number_of_runs a submission may ask for: Judge0's 20, or fewer where the server takes
 * fewer tests (CELLBLOCK_MAX_TESTS; a submission's runs are its tests), so that a submission over it
 * hears Judge0's `must be less than or equal to N` whichever bound is lower, as config_info's
 * max_number_of_runs says. */
export function judge0MaxNumberOfRuns(maxTests: number): number {
  return Math.min(JUDGE0_MAX_NUMBER_OF_RUNS, maxTests);
}
export const JUDGE0_MAX_CPU_EXTRA_TIME_SECONDS = 5;
/** Judge0's MAX_FILE_SIZE default (judge0.conf): what a submission without max_file_size gets. */
export const JUDGE0_DEFAULT_MAX_FILE_SIZE_KIB = 1024;

/** The file size limit of a submission without max_file_size: Judge0's default where the runtime's
 * maxima allow it. Judge0's stdout is a file in its box, so the same limit bounds the output
 * (outputBytes), which the maxima bound too: what config_info and the submission's max_file_size
 * say is what is applied to files and stdout alike (stdout at most the runtime's default output,
 * where an operator made that smaller), not the runtime's own defaults (a larger file size than
 * output: 16 MiB and 1 MiB). */
export function judge0DefaultFileSizeBytes(maxima: Limits): number {
  return Math.min(kibToBytes(JUDGE0_DEFAULT_MAX_FILE_SIZE_KIB), maxima.fileSizeBytes, maxima.outputBytes);
}
const MAX_OPTION_CHARS = 512;

/** Judge0's attribute for each limit of a run that the translation sets from one (outputBytes
 * too from max_file_size: Judge0's stdout is a file in its box). A compile has none: Judge0
 * compiles within its configured maxima. */
const JUDGE0_LIMIT_ATTRIBUTES: Partial<Record<keyof Limits, string>> = {
  cpuTimeMs: 'cpu_time_limit',
  wallTimeMs: 'wall_time_limit',
  memoryBytes: 'memory_limit',
  stackBytes: 'stack_limit',
  pids: 'max_processes_and_or_threads',
  fileSizeBytes: 'max_file_size',
  outputBytes: 'max_file_size',
};

/** The lists the server's maxima count, as a submission gives them: its files are the source file
 * and the additional files' entries; its arguments and compiler options are words of a string; its
 * tests are runs. */
const JUDGE0_LISTS: Partial<Record<CountedList, { field: string; noun: string }>> = {
  files: { field: 'additional_files', noun: 'files with the source file' },
  args: { field: 'command_line_arguments', noun: 'arguments' },
  compileArgs: { field: 'compiler_options', noun: 'options' },
  tests: { field: 'number_of_runs', noun: 'runs' },
};

/** Judge0's attributes in admissionProblem's refusals (`command_line_arguments: ["129 arguments; at
 * most 128"]`). number_of_runs is bounded before, by the translation (judge0MaxNumberOfRuns). */
export const judge0Fields: FrontFields = {
  limit: (stage, limit) => (stage === 'limits' ? JUDGE0_LIMIT_ATTRIBUTES[limit] : undefined),
  list: (list) => JUDGE0_LISTS[list],
};

/** Rails' `render json: submission.errors, status: :unprocessable_entity`. */
export class Judge0ValidationError extends Error {
  override readonly name = 'Judge0ValidationError';
  readonly statusCode = 422;
  constructor(readonly errors: Record<string, string[]>) {
    super(Object.entries(errors).map(([field, messages]) => `${field} ${messages.join(', ')}`).join('; '));
  }
}

export interface Judge0Submission {
  language: Judge0Language;
  request: JobRequest;
  callbackUrl?: string;
}

type Params = Record<string, unknown>;

/** ActiveModel's boolean cast, as a Judge0 boolean attribute is stored: nil and "" are nil, these
 * false, anything else true ("yes", 2, "True"). */
const FALSE_VALUES = new Set<unknown>([false, 0, '0', 'f', 'F', 'false', 'FALSE', 'off', 'OFF']);
const railsTrue = (value: unknown): boolean => value !== undefined && value !== null && value !== '' && !FALSE_VALUES.has(value);

/** Rails' blank?: nil, false, or a string of only whitespace. */
const isBlank = (value: unknown): boolean =>
  value === undefined || value === null || value === false || (typeof value === 'string' && value.trim() === '');

/** A JSON scalar as Rails casts it to text; undefined for an object or array, whose String() can
 * throw ({"toString": 1}) or recurse without end (deeply nested arrays). */
const scalarText = (value: unknown): string | undefined =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;

class Collector {
  readonly errors: Record<string, string[]> = {};
  add(field: string, message: string): void {
    (this.errors[field] ??= []).push(message);
  }
}

/** Text attribute: a string (or number, as Rails casts it); base64-decoded when the request says so. */
function text(params: Params, field: string, base64: boolean, errors: Collector): Buffer | null {
  const value = params[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' && typeof value !== 'number') {
    errors.add(field, 'is invalid');
    return null;
  }
  // Ruby's Base64.decode64 skips characters outside the alphabet, as Buffer.from does.
  return base64 ? Buffer.from(String(value), 'base64') : Buffer.from(String(value), 'utf8');
}

interface NumberRule {
  field: string;
  integer?: boolean;
  greaterThan?: number;
  atLeast?: number;
  /** Upper bound and how Rails prints it. */
  atMost?: { value: number; shown: string };
}

/** Numericality validation; absent (nil or "") means "use the default". */
function numberField(params: Params, rule: NumberRule, errors: Collector): number | undefined {
  const raw = params[rule.field];
  if (raw === undefined || raw === null || raw === '') return undefined;
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value)) {
    errors.add(rule.field, 'is not a number');
    return undefined;
  }
  // An integer column keeps the integer part, as ActiveRecord's cast does: the lower bounds hold
  // for what is kept (0.5 processes would be 0).
  const kept = rule.integer ? Math.trunc(value) : value;
  let ok = true;
  if (rule.greaterThan !== undefined && !(kept > rule.greaterThan)) {
    errors.add(rule.field, `must be greater than ${rule.greaterThan}`);
    ok = false;
  }
  if (rule.atLeast !== undefined && !(kept >= rule.atLeast)) {
    errors.add(rule.field, `must be greater than or equal to ${rule.atLeast}`);
    ok = false;
  }
  if (rule.atMost !== undefined && !(value <= rule.atMost.value)) {
    errors.add(rule.field, `must be less than or equal to ${rule.atMost.shown}`);
    ok = false;
  }
  return ok ? kept : undefined;
}

/** Options Judge0 can refuse by configuration; this service refuses them the same way. */
const REFUSED_WHEN_TRUE: [field: string, message: string][] = [
  ['enable_per_process_and_thread_time_limit', 'this option cannot be enabled'],
  ['enable_per_process_and_thread_memory_limit', 'this option cannot be enabled'],
  ['enable_network', 'enabling network is not allowed'],
];

/** Judge0 writes `run_cmd + command_line_arguments` (and `compile_cmd % compiler_options`) into a
 * bash script after deleting these. */
const SHELL_METACHARACTERS = /[$&;<>|`]/g;

/** command_line_arguments or compiler_options as Judge0 hands them to bash: at most 512 characters,
 * the metacharacters deleted, split on whitespace (quotes are not interpreted: docs/compat.md). */
function shellWords(params: Params, field: 'command_line_arguments' | 'compiler_options', errors: Collector): string[] {
  const raw = params[field];
  if (isBlank(raw)) return [];
  const value = scalarText(raw);
  if (value === undefined) {
    errors.add(field, 'is invalid');
    return [];
  }
  if (value.length > MAX_OPTION_CHARS) {
    errors.add(field, `is too long (maximum is ${MAX_OPTION_CHARS} characters)`);
    return [];
  }
  // A program's arguments end at their first NUL (execve): refused rather than cut short.
  if (value.includes('\0')) {
    errors.add(field, 'must not contain NUL characters');
    return [];
  }
  return value.replace(SHELL_METACHARACTERS, '').trim().split(/\s+/).filter((arg) => arg !== '');
}

/** Judge0's compiler_options_allowed: only for a language with a compile step whose command takes
 * arguments (compileArgsProblem; every compiled runtime of ours does). */
function compilerOptions(params: Params, language: Judge0Language | undefined, languages: Judge0Languages, errors: Collector): string[] {
  if (isBlank(params.compiler_options)) return [];
  const options = shellWords(params, 'compiler_options', errors);
  if (language && !language.runtime.compile) {
    errors.add('compiler_options', 'setting compiler options is only allowed for compiled languages');
  } else if (language && compileArgsProblem(language.runtime)) {
    const allowed = judge0CompilerOptionLanguages(languages);
    errors.add('compiler_options', allowed.length === 0 ? 'setting compiler options is not allowed' : `setting compiler options is only allowed for ${allowed.join(', ')}`);
  }
  return options;
}

/** Judge0's ALLOWED_LANGUAGES_FOR_COMPILER_OPTIONS: empty when every compiled language takes them,
 * else the names (first words) of those that do. */
export function judge0CompilerOptionLanguages(languages: Judge0Languages): string[] {
  const compiled = languages.listed.filter((language) => language.runtime.compile);
  const taking = compiled.filter((language) => compileArgsProblem(language.runtime) === undefined);
  return taking.length === compiled.length ? [] : [...new Set(taking.map((language) => language.name.split(' ')[0]!))];
}

/** The additional files as job files, the source file's name left out: unzip -n keeps the source
 * file that Judge0 wrote before it. */
function extraFiles(additional: AdditionalFiles | undefined, sourceFile: string): JobRequest['files'] {
  if (additional === undefined || 'error' in additional) return [];
  return additional.files.filter((file) => file.name !== sourceFile).map((file) => ({ name: file.name, contentBase64: file.content.toString('base64') }));
}

function callbackUrl(params: Params, errors: Collector): string | undefined {
  const raw = params.callback_url;
  if (isBlank(raw)) return undefined;
  try {
    const url = new URL(scalarText(raw) ?? '');
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.toString();
  } catch {
    // reported below
  }
  errors.add('callback_url', 'is not a valid URL');
  return undefined;
}

/** `additional` is readAdditionalFiles' reading of the submission's additional_files (an async
 * step of its own), undefined when it is blank. `maxTests`: the server's CELLBLOCK_MAX_TESTS,
 * which bounds number_of_runs with Judge0's own maximum (judge0MaxNumberOfRuns). */
export function translateJudge0Submission(
  rawParams: unknown,
  base64Encoded: boolean,
  languages: Judge0Languages,
  additional?: AdditionalFiles,
  maxTests: number = JUDGE0_MAX_NUMBER_OF_RUNS,
): Judge0Submission {
  const params: Params = rawParams !== null && typeof rawParams === 'object' && !Array.isArray(rawParams) ? (rawParams as Params) : {};
  const errors = new Collector();

  const source = text(params, 'source_code', base64Encoded, errors);
  if (source === null || source.toString('utf8').trim() === '') errors.add('source_code', "can't be blank");

  let language: Judge0Language | undefined;
  let languageId: number | undefined;
  if (isBlank(params.language_id)) {
    errors.add('language_id', "can't be blank");
  } else {
    const shown = scalarText(params.language_id);
    const id = shown === undefined ? Number.NaN : Number(shown);
    if (Number.isInteger(id)) languageId = id;
    language = languageId !== undefined ? languages.byLanguageId(languageId) : undefined;
    if (shown === undefined) errors.add('language_id', 'is invalid');
    else if (language === undefined) errors.add('language_id', `language with id ${shown} doesn't exist`);
  }
  const maxima = language ? stageMaxima(language.runtime, 'run') : undefined;
  const bound = (value: number | undefined, shown: (value: number) => string) =>
    value === undefined ? undefined : { value, shown: shown(value) };

  const numberOfRuns = numberField(
    params,
    { field: 'number_of_runs', integer: true, greaterThan: 0, atMost: bound(judge0MaxNumberOfRuns(maxTests), String) },
    errors,
  );
  const cpuTimeLimitSeconds = numberField(
    params,
    { field: 'cpu_time_limit', atLeast: 0, atMost: bound(maxima && msToSeconds(maxima.cpuTimeMs), rubyDecimal) },
    errors,
  );
  const cpuExtraTimeSeconds = numberField(params, { field: 'cpu_extra_time', atLeast: 0, atMost: bound(JUDGE0_MAX_CPU_EXTRA_TIME_SECONDS, rubyDecimal) }, errors);
  const wallTimeLimitSeconds = numberField(
    params,
    { field: 'wall_time_limit', atLeast: 1, atMost: bound(maxima && msToSeconds(maxima.wallTimeMs), rubyDecimal) },
    errors,
  );
  const memoryLimitKiB = numberField(
    params,
    { field: 'memory_limit', integer: true, atLeast: 2048, atMost: bound(maxima && bytesToKiB(maxima.memoryBytes), String) },
    errors,
  );
  const stackLimitKiB = numberField(
    params,
    { field: 'stack_limit', integer: true, atLeast: 0, atMost: bound(maxima && bytesToKiB(maxima.stackBytes), String) },
    errors,
  );
  const maxProcesses = numberField(
    params,
    { field: 'max_processes_and_or_threads', integer: true, greaterThan: 0, atMost: bound(maxima?.pids, String) },
    errors,
  );
  const maxFileSizeKiB = numberField(
    params,
    { field: 'max_file_size', integer: true, atLeast: 0, atMost: bound(maxima && bytesToKiB(maxima.fileSizeBytes), String) },
    errors,
  );

  for (const [field, message] of REFUSED_WHEN_TRUE) {
    if (railsTrue(params[field])) errors.add(field, message);
  }
  const compileArgs = compilerOptions(params, language, languages, errors);
  if (additional === undefined && !isBlank(params.additional_files)) throw new Error('additional_files was not read (readAdditionalFiles)');
  if (additional && 'error' in additional) errors.add('additional_files', additional.error);
  const args = shellWords(params, 'command_line_arguments', errors);
  const callback = callbackUrl(params, errors);
  const stdin = text(params, 'stdin', base64Encoded, errors) ?? Buffer.alloc(0);
  const expectedOutput = text(params, 'expected_output', base64Encoded, errors);

  if (
    Object.keys(errors.errors).length > 0 ||
    language === undefined ||
    languageId === undefined ||
    source === null ||
    maxima === undefined
  ) {
    throw new Judge0ValidationError(errors.errors);
  }

  // isolate treats 0 as "no limit" for time, stack and file size; ours always has one: the maximum.
  const limits: Partial<Limits> = {};
  // A limit under half a millisecond would round to none at all: it is 1 ms (the engine reads a
  // run's CPU time every 5 ms, so a limit that small stops the run at its first reading anyway).
  if (cpuTimeLimitSeconds !== undefined) {
    limits.cpuTimeMs = cpuTimeLimitSeconds === 0 ? maxima.cpuTimeMs : Math.max(1, secondsToMs(cpuTimeLimitSeconds));
  }
  if (wallTimeLimitSeconds !== undefined) limits.wallTimeMs = secondsToMs(wallTimeLimitSeconds);
  if (memoryLimitKiB !== undefined) limits.memoryBytes = kibToBytes(memoryLimitKiB);
  if (stackLimitKiB !== undefined) limits.stackBytes = stackLimitKiB === 0 ? maxima.stackBytes : kibToBytes(stackLimitKiB);
  if (maxProcesses !== undefined) limits.pids = maxProcesses;
  limits.fileSizeBytes =
    maxFileSizeKiB === undefined ? judge0DefaultFileSizeBytes(maxima) : maxFileSizeKiB === 0 ? maxima.fileSizeBytes : kibToBytes(maxFileSizeKiB);
  // Judge0's stdout is a file in the box, so the same limit bounds what the program prints; without
  // a max_file_size, not beyond the runtime's own default output (an operator's choice, which
  // the job's output budget, CELLBLOCK_MAX_JOB_OUTPUT_BYTES, is sized for).
  limits.outputBytes = Math.min(limits.fileSizeBytes, maxFileSizeKiB === undefined ? language.runtime.defaultLimits.outputBytes : maxima.outputBytes);

  const stdinBase64 = stdin.toString('base64');
  const request: JobRequest = {
    runtimeId: language.runtime.id,
    files: [{ name: language.sourceFile, contentBase64: source.toString('base64') }, ...extraFiles(additional, language.sourceFile)],
    stdinBase64,
    args,
    limits,
    // Judge0 answers every read with what was submitted; this is what the request above cannot say.
    front: judge0Front({
      languageId,
      expectedOutputBase64: expectedOutput === null ? null : expectedOutput.toString('base64'),
      cpuExtraTimeSeconds: cpuExtraTimeSeconds ?? null,
      commandLineArguments: isBlank(params.command_line_arguments) ? null : (scalarText(params.command_line_arguments) ?? null),
      compilerOptions: isBlank(params.compiler_options) ? null : (scalarText(params.compiler_options) ?? null),
      additionalFilesBase64: additional && 'zipBase64' in additional ? additional.zipBase64 : null,
      callbackUrl: callback ?? null,
    }),
  };
  if (compileArgs.length > 0) request.compileArgs = compileArgs;
  if (railsTrue(params.redirect_stderr_to_stdout)) request.stderrToStdout = true;
  // Judge0's compile commands name the source file alone; the others are there for it to include.
  if (request.files.length > 1) request.compileEntryOnly = true;
  // Judge0 runs a submission number_of_runs times and compares each run with expected_output:
  // one test per run, compiled once. The expected output's bytes as Judge0 compares them: as text
  // where they are UTF-8 (any worker runs that), else as bytes (a later field: an older worker
  // would run the test with no expected output, and the queue refuses it while one is live).
  const runs = numberOfRuns ?? 1;
  if (expectedOutput !== null || runs > 1) {
    const test = expectedOutput === null ? { stdinBase64 } : { stdinBase64, ...expectedOutputFields(expectedOutput) };
    request.tests = Array.from({ length: runs }, () => ({ ...test }));
  }
  // Judge0 stops at the first run that is not Accepted (IsolateJob's `break if submission.status !=
  // Status.ac`): a program at its time limit holds a worker for one run, not for every run.
  if (runs > 1) request.stopOnFailure = true;
  const submission: Judge0Submission = { language, request };
  if (callback !== undefined) submission.callbackUrl = callback;
  return submission;
}
