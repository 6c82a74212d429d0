// A /v1 submission, checked against the runtime it names and turned into the queue's JobRequest.
// Everything a worker would trip over is refused here with its own code, so that a job that is
// accepted can run; admissionProblem stands behind every front's own checks (Piston, Judge0 too).
import {
  FILE_NAME_MAX_BYTES,
  hasLoneSurrogate,
  shownFileName,
  NAME_MAX_BYTES,
  OPTION_LIKE_FILE_NAME,
  checkJudgeProgram,
  checkSubmission,
  compileArgsProblem,
  comparisonProblem,
  judgedJobProblem,
  judgeFileNameProblem,
  limitBelowMinimum,
  outputAboveMaximum,
  type CheckedSubmission,
  type JudgeRole,
  type LimitFieldName,
  type SubmissionShape,
} from '../executor/check.js';
import { ExecutorError } from '../executor/errors.js';
import { checkedFileName, fileNamesConflict } from '../executor/files.js';
import type { Runtime } from '../images/types.js';
import type { JobJudgeProgram, JobRequest } from '../jobs/model.js';
import type { OutboundPolicy } from '../queue/outbound.js';
import type { Limits } from '../sandbox/types.js';
import { ApiError, badRequest } from './errors.js';
import { requireRuntime } from './runtimes.js';
import { MAX_ARG_CHARS, type JobSubmission } from './schemas.js';

type JudgeProgramSubmission = NonNullable<JobSubmission['interactor' | 'checker']>;

export interface SubmissionPolicy {
  maxFiles: number;
  maxTests: number;
  maxArgs: number;
  maxJobOutputBytes: number;
  /** Where a webhook (or a Judge0 callback) may be sent: a URL naming an address outside is refused. */
  webhookDestinations: OutboundPolicy;
}

/** What the worker's executor makes of the job (checkSubmission, the code it runs first), or why
 * it would refuse it (its limits named by `limitFieldName`, as the request names them). */
function checkedForWorker(request: JobRequest, runtime: Runtime, limitFieldName?: LimitFieldName): CheckedSubmission | string {
  const shape: SubmissionShape = { fileNames: request.files.map((file) => file.name), args: request.args, limits: request.limits };
  if (limitFieldName) shape.limitFieldName = limitFieldName;
  if (request.variant !== undefined) shape.variant = request.variant;
  if (request.compileArgs) shape.compileArgs = request.compileArgs;
  if (request.compileEntryOnly) shape.compileEntryOnly = true;
  if (request.outputFiles) shape.outputFiles = request.outputFiles;
  if (request.compileLimits) shape.compileLimits = request.compileLimits;
  if (request.tests) shape.runs = request.tests.length;
  return valueOrRefusal(workerCheck(() => checkSubmission(runtime, shape)));
}

/** What `check` returns, or the message of the ExecutorError it throws (the worker's refusal). */
function workerCheck<T>(check: () => T): { value: T } | { refusal: string } {
  try {
    return { value: check() };
  } catch (error) {
    if (error instanceof ExecutorError) return { refusal: error.message };
    throw error;
  }
}

const valueOrRefusal = <T>(checked: { value: T } | { refusal: string }): T | string => ('refusal' in checked ? checked.refusal : checked.value);

/** What the worker's executor makes of a job's judge program (checkJudgeProgram), or why it
 * would refuse it. */
function checkedJudgeForWorker(role: JudgeRole, request: JobRequest, judge: JobJudgeProgram, runtime: Runtime, program: CheckedSubmission): CheckedSubmission | string {
  return valueOrRefusal(workerCheck(() => checkJudgeProgram(role, runtime, judge, request.tests?.length ?? 1, program.runLimits.wallTimeMs)));
}

/** The server's maxima on counts, as /v1 refuses them; the other fronts name the list and its items
 * their way (FrontFields). */
const COUNT_MAXIMA = {
  files: { code: 'too_many_files', noun: 'files', maximum: 'maxFiles' },
  args: { code: 'too_many_args', noun: 'arguments', maximum: 'maxArgs' },
  compileArgs: { code: 'too_many_args', noun: 'compile arguments', maximum: 'maxArgs' },
  outputFiles: { code: 'too_many_files', noun: 'output files', maximum: 'maxFiles' },
  tests: { code: 'too_many_tests', noun: 'tests', maximum: 'maxTests' },
} as const;

/** A list the server's maxima count. */
export type CountedList = keyof typeof COUNT_MAXIMA;

/** How a front's request names what its refusals are about, where its fields are not /v1's: a
 * stage's limit (`limit`: Piston's `run_memory_limit` for limits.memoryBytes) and a list the
 * server's maxima count (`list`: Judge0's `number_of_runs`, whose items are runs, for tests). Either
 * gives undefined where the request has no such field. A list's `item`, where the front's messages
 * begin with one item's path (Piston's `args[0] must not contain NUL characters`): a refusal about
 * that item is then that sentence ("args[0] has more than 4096 characters"), not `field: reason`. */
export interface FrontFields {
  limit: LimitFieldName;
  list: (list: CountedList) => { field: string; noun?: string; item?: (index: number) => string } | undefined;
}

/** /v1's own names, its requests' fields. */
const V1_FIELDS: FrontFields = { limit: (stage, limit) => `${stage}.${limit}`, list: (field) => ({ field }) };

/** `${count} files; at most ${maximum}`, or undefined within the maximum; `noun` the front's word
 * for the items where it is not ours. */
function countReason(what: CountedList, count: number, policy: SubmissionPolicy, noun: string = COUNT_MAXIMA[what].noun): string | undefined {
  const maximum = policy[COUNT_MAXIMA[what].maximum];
  return count <= maximum ? undefined : `${count} ${noun}; at most ${maximum}`;
}

/** `field`: a judge program's ("checker.files"), named in the message and details; absent for the
 * program's own. */
function countAboveMaximum(what: CountedList, count: number, policy: SubmissionPolicy, field?: string): ApiError | undefined {
  const reason = countReason(what, count, policy);
  if (reason === undefined) return undefined;
  const { code } = COUNT_MAXIMA[what];
  const maximum = policy[COUNT_MAXIMA[what].maximum];
  return field ? badRequest(code, `${field}: ${reason}`, { maximum, field }) : badRequest(code, reason, { maximum });
}

/** Said where no field of the request lowers the output a job could store (Piston's: it sets no
 * output limit, and runs once). */
const OUTPUT_SET_BY_SERVER = "no field of this request lowers it: the runtime's output limits and CELLBLOCK_MAX_JOB_OUTPUT_BYTES are the server's settings";

/** The job could store more output than the server keeps for one (outputAboveMaximum), with what
 * to do about it in the request's own fields. */
function outputProblem(
  request: JobRequest,
  checked: CheckedSubmission,
  policy: SubmissionPolicy,
  judge?: { role: JudgeRole; checked: CheckedSubmission },
  fields: FrontFields = V1_FIELDS,
): string | undefined {
  const problem = outputAboveMaximum(checked, policy.maxJobOutputBytes, judge ? [judge] : []);
  if (problem === undefined) return undefined;
  const lower = [fields.limit('limits', 'outputBytes'), judge && `${judge.role}.limits.outputBytes`].filter((field) => field !== undefined);
  // Fewer tests only where there are several: one test is the least a job with tests runs.
  const fewer = [(request.tests?.length ?? 0) > 1 ? fields.list('tests') : undefined, checked.outputFiles.length > 0 ? fields.list('outputFiles') : undefined]
    .filter((named) => named !== undefined)
    .map(({ field, noun }) => (noun === undefined ? field : `${noun} (${field})`));
  const hints = [lower.length > 0 ? `lower ${lower.join(' or ')}` : undefined, fewer.length > 0 ? `send fewer ${fewer.join(' or ')}` : undefined].filter((hint) => hint !== undefined);
  return `${problem} (${hints.length > 0 ? hints.join(' or ') : OUTPUT_SET_BY_SERVER})`;
}

const STOP_ON_FAILURE_NEEDS_TESTS = 'stopOnFailure stops the tests at the first that fails: give tests';

/** Why admissionProblem refuses a job: `reason`, what is wrong; `field`, the request's field it is
 * about, as the front names it (absent where it is about no one field of the request: Judge0 files
 * it under `base`, Rails' key for those). */
export interface AdmissionProblem {
  field?: string;
  reason: string;
}

/** A problem with the field a front's name for a list gives, where it has one. */
const aboutList = (named: { field: string } | undefined, reason: string): AdmissionProblem => (named ? { field: named.field, reason } : { reason });

/** An AdmissionProblem as one sentence (Piston's `{"message"}`): "args: 129 arguments; at most 128". */
export const admissionMessage = ({ field, reason }: AdmissionProblem): string => (field === undefined ? reason : `${field}: ${reason}`);

/** The last check before a job is queued, whichever front translated it: the server's maxima (files,
 * arguments, tests, the output the job could store) and the worker's own check of a submission
 * (checkSubmission, the code its executor runs first), so that no job is accepted that a worker
 * would refuse. Each front says it in its own words: `fields` names its request's fields (a limit,
 * a counted list), /v1's where absent; undefined when the job may be queued. */
export function admissionProblem(request: JobRequest, runtime: Runtime, policy: SubmissionPolicy, fields: FrontFields = V1_FIELDS): AdmissionProblem | undefined {
  // Only /v1 takes a judge program or a comparison, and checks them there (toJobRequest).
  for (const field of ['interactor', 'checker', 'comparison'] as const) {
    if (request[field] !== undefined) return { reason: `this API takes no ${field}` };
  }
  // Judge0's number_of_runs stops at the first run that fails: its runs are tests.
  if (request.stopOnFailure !== undefined && request.tests === undefined) return { reason: STOP_ON_FAILURE_NEEDS_TESTS };
  const compileArgs = request.compileArgs ?? [];
  const counts: [CountedList, number][] = [
    ['files', request.files.length],
    ['args', request.args.length],
    ['compileArgs', compileArgs.length],
    ['outputFiles', request.outputFiles?.length ?? 0],
    ['tests', request.tests?.length ?? 0],
  ];
  for (const [what, count] of counts) {
    const named = fields.list(what);
    const reason = countReason(what, count, policy, named?.noun);
    if (reason !== undefined) return aboutList(named, reason);
  }
  for (const [what, list, args] of [['argument', 'args', request.args], ['compile argument', 'compileArgs', compileArgs]] as const) {
    const long = args.findIndex((arg) => typeof arg === 'string' && arg.length > MAX_ARG_CHARS);
    if (long < 0) continue;
    const named = fields.list(list);
    const tooLong = `has more than ${MAX_ARG_CHARS} characters`;
    return named?.item ? { reason: `${named.item(long)} ${tooLong}` } : aboutList(named, `${what} ${long} ${tooLong}`);
  }
  // A file name the worker would refuse is about the front's list of files (Judge0: an entry of
  // additional_files' zip), not the request as a whole.
  const names: string[] = [];
  for (const file of request.files) {
    const named = workerCheck(() => checkedFileName(file.name));
    if ('refusal' in named) return aboutList(fields.list('files'), named.refusal);
    names.push(named.value);
  }
  const conflict = fileNamesConflict(names);
  if (conflict !== undefined) return aboutList(fields.list('files'), conflict);
  const checked = checkedForWorker(request, runtime, fields.limit);
  if (typeof checked === 'string') return { reason: checked };
  const output = outputProblem(request, checked, policy, undefined, fields);
  return output === undefined ? undefined : { reason: output };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (RFC 4648, padded, no whitespace): Buffer.from would silently skip bad characters. */
export function decodeBase64(text: string, what: string): Buffer {
  if (!BASE64.test(text)) throw badRequest('invalid_base64', `${what} is not valid base64`, { field: what });
  return Buffer.from(text, 'base64');
}

/** Relative, normalised, inside the work dir: no "..", no absolute path, no empty segment, no NUL;
 * not an option to the compile's command (OPTION_LIKE_FILE_NAME); parts of at most NAME_MAX_BYTES,
 * the whole at most FILE_NAME_MAX_BYTES; no lone UTF-16 surrogate (the worker's checkedFileName). */
export function checkFileName(name: string, what: string): void {
  const segments = name.split('/');
  const bad =
    name.includes('\0') ||
    name.startsWith('/') ||
    segments.some((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad) {
    throw badRequest('invalid_file_name', `${what} "${shownFileName(name)}" must be a relative path inside the work dir (no "..", no leading "/")`, {
      field: what,
    });
  }
  if (hasLoneSurrogate(name)) {
    throw badRequest('invalid_file_name', `${what} "${shownFileName(name)}" is not valid Unicode (it holds a lone surrogate, which would be written as U+FFFD)`, { field: what });
  }
  if (OPTION_LIKE_FILE_NAME.test(name)) {
    throw badRequest('invalid_file_name', `${what} "${shownFileName(name)}" must not start with "-" or "@": the compiler would read it as an option`, {
      field: what,
    });
  }
  if (segments.some((segment) => Buffer.byteLength(segment) > NAME_MAX_BYTES)) {
    throw badRequest('invalid_file_name', `${what} "${shownFileName(name)}" has a part longer than ${NAME_MAX_BYTES} bytes, more than a file system takes`, { field: what });
  }
  const bytes = Buffer.byteLength(name);
  if (bytes > FILE_NAME_MAX_BYTES) {
    throw badRequest('invalid_file_name', `${what} is ${bytes} bytes long, more than ${FILE_NAME_MAX_BYTES} (each part at most ${NAME_MAX_BYTES})`, { field: what });
  }
}

/** Every asked-for limit must be at most the runtime's maximum (and, for runs, at least its
 * minLimits). */
export function checkLimits(runtime: Runtime, limits: Partial<Limits> | undefined, maxima: Limits, what: string, stage: 'run' | 'compile' = 'run'): Partial<Limits> {
  const below = stage === 'run' ? limitBelowMinimum(runtime, limits ?? {}) : undefined;
  if (below) {
    throw badRequest('limit_below_minimum', `${what}.${below.name} = ${below.value} is below the minimum ${below.minimum} of runtime "${runtime.id}" (it does not start below it)`, {
      field: `${what}.${below.name}`,
      value: below.value,
      minimum: below.minimum,
    });
  }
  const checked: Partial<Limits> = {};
  for (const [key, value] of Object.entries(limits ?? {}) as [keyof Limits, number | undefined][]) {
    if (value === undefined) continue;
    const maximum = maxima[key];
    if (value > maximum) {
      throw badRequest(
        'limit_above_maximum',
        `${what}.${key} = ${value} is above the maximum ${maximum} of runtime "${runtime.id}"`,
        { field: `${what}.${key}`, value, maximum },
      );
    }
    checked[key] = value;
  }
  return checked;
}

export function toJobRequest(
  submission: JobSubmission,
  runtimes: readonly Runtime[],
  policy: SubmissionPolicy,
): JobRequest {
  const runtime = requireRuntime(runtimes, submission.language, submission.version);
  const files = submittedFiles(submission, runtime, policy);
  const args = submission.args ?? [];
  const tooManyArgs = countAboveMaximum('args', args.length, policy);
  if (tooManyArgs) throw tooManyArgs;
  if (args.some((arg) => arg.includes('\0'))) throw badRequest('invalid_args', 'arguments may not contain NUL');
  const compileArgs = submittedCompileArgs(submission, runtime, policy);

  const request: JobRequest = {
    runtimeId: runtime.id,
    files,
    stdinBase64: Buffer.from(submission.stdin ?? '', 'utf8').toString('base64'),
    args,
    limits: checkLimits(runtime, submission.limits, runtime.maxLimits, 'limits'),
  };
  if (compileArgs.length > 0) request.compileArgs = compileArgs;
  if (submission.stderrToStdout === true) request.stderrToStdout = true;
  if (submission.stopOnFailure === true) {
    if (!submission.tests) throw badRequest('stop_on_failure_not_applicable', STOP_ON_FAILURE_NEEDS_TESTS, { field: 'stopOnFailure' });
    request.stopOnFailure = true;
  }
  if (submission.outputFiles && submission.outputFiles.length > 0) {
    const tooManyOutputFiles = countAboveMaximum('outputFiles', submission.outputFiles.length, policy);
    if (tooManyOutputFiles) throw tooManyOutputFiles;
    const seen = new Set<string>();
    submission.outputFiles.forEach((name, index) => {
      checkFileName(name, `outputFiles[${index}]`);
      if (seen.has(name)) throw badRequest('duplicate_file_name', `output file "${name}" is asked for twice`);
      seen.add(name);
    });
    request.outputFiles = submission.outputFiles;
  }
  const compileLimits = submittedCompileLimits(submission, runtime);
  if (compileLimits) request.compileLimits = compileLimits;
  if (submission.tests) {
    const tooManyTests = countAboveMaximum('tests', submission.tests.length, policy);
    if (tooManyTests) throw tooManyTests;
    request.tests = submission.tests.map((test) => {
      const stdinBase64 = Buffer.from(test.stdin ?? '', 'utf8').toString('base64');
      return test.expectedOutput === undefined ? { stdinBase64 } : { stdinBase64, expectedOutput: test.expectedOutput };
    });
  }
  const comparison = comparisonProblem({ comparison: submission.comparison, tests: submission.tests, judged: submission.interactor !== undefined || submission.checker !== undefined });
  if (comparison) throw badRequest(comparison.code, comparison.message, { field: 'comparison' });
  // The default is every worker's: a job that names it runs on an older worker too.
  if (submission.comparison && submission.comparison.mode !== 'lines') request.comparison = submission.comparison;
  const problem = judgedJobProblem({
    tests: submission.tests,
    stdinBytes: Buffer.byteLength(submission.stdin ?? ''),
    stderrToStdout: submission.stderrToStdout,
    interactor: submission.interactor !== undefined,
    checker: submission.checker !== undefined,
  });
  if (problem) throw badRequest(`${problem.role}_not_applicable`, problem.message, { field: problem.role });
  // Each test runs with its own stdin: a job's own would be run by none of them.
  if (submission.tests && (submission.stdin ?? '') !== '') {
    throw badRequest('stdin_not_applicable', "a job with tests runs each test with its own stdin: give the input as tests[].stdin, not as the job's stdin", { field: 'stdin' });
  }
  const role: JudgeRole | undefined = submission.interactor ? 'interactor' : submission.checker ? 'checker' : undefined;
  const judge = role ? { role, ...toJobJudgeProgram(role, submission[role]!, runtimes, policy) } : undefined;
  if (judge) request[judge.role] = judge.request;
  if (submission.webhookUrl !== undefined) {
    request.webhookUrl = checkWebhookUrl(submission.webhookUrl, policy.webhookDestinations);
  }
  // The checks above name the usual mistakes; the worker's own check stands behind them.
  const checked = checkedForWorker(request, runtime);
  if (typeof checked === 'string') throw badRequest('unrunnable_job', checked);
  let judgeChecked: { role: JudgeRole; checked: CheckedSubmission } | undefined;
  if (judge) {
    const result = checkedJudgeForWorker(judge.role, request, judge.request, judge.runtime, checked);
    if (typeof result === 'string') throw badRequest('unrunnable_job', `${judge.role}: ${result}`, { field: judge.role });
    judgeChecked = { role: judge.role, checked: result };
  }
  const output = outputProblem(request, checked, policy, judgeChecked);
  if (output) {
    const outputBytes = checked.mostOutputBytes + (judgeChecked?.checked.mostOutputBytes ?? 0);
    throw badRequest('job_output_above_maximum', output, { outputBytes, maximum: policy.maxJobOutputBytes });
  }
  return request;
}

/** The parts a program and a judge program are both given in. */
type SourceSubmission = Pick<JobSubmission, 'source' | 'files' | 'compileArgs' | 'compileLimits'>;

/** Where a submission's fields sit in the body, for the messages: "" for the program's, "interactor."
 * or "checker." for its judge program's. */
const prefixOf = (role: JudgeRole | undefined): string => (role ? `${role}.` : '');

function submittedFiles(submission: SourceSubmission, runtime: Runtime, policy: SubmissionPolicy, role?: JudgeRole): JobRequest['files'] {
  const prefix = prefixOf(role);
  if ((submission.source === undefined) === (submission.files === undefined)) {
    throw badRequest('source_or_files', `give exactly one of "${prefix}source" or "${prefix}files"`);
  }
  if (!submission.files) {
    return [{ name: runtime.sourceFile, contentBase64: Buffer.from(submission.source!, 'utf8').toString('base64') }];
  }
  const tooMany = countAboveMaximum('files', submission.files.length, policy, role && `${prefix}files`);
  if (tooMany) throw tooMany;
  const seen = new Set<string>();
  return submission.files.map((file, index) => {
    const field = `${prefix}files[${index}].name`;
    checkFileName(file.name, field);
    const reserved = role ? judgeFileNameProblem(role, file.name) : undefined;
    if (reserved) throw badRequest('invalid_file_name', reserved, { field });
    if (seen.has(file.name)) throw badRequest('duplicate_file_name', `file "${file.name}" is given twice${prefix ? ` in ${prefix}files` : ''}`, { field });
    seen.add(file.name);
    const content = file.base64 ? decodeBase64(file.content, `${prefix}files[${index}].content`) : Buffer.from(file.content, 'utf8');
    return { name: file.name, contentBase64: content.toString('base64') };
  });
}

function submittedCompileArgs(submission: SourceSubmission, runtime: Runtime, policy: SubmissionPolicy, role?: JudgeRole): string[] {
  const compileArgs = submission.compileArgs ?? [];
  if (compileArgs.length === 0) return compileArgs;
  const field = `${prefixOf(role)}compileArgs`;
  // Dropped, they would leave the caller believing the program was built with them.
  if (!runtime.compile) {
    throw badRequest('no_compile_step', `runtime "${runtime.id}" has no compile step: ${field} does not apply`, { field });
  }
  const problem = compileArgsProblem(runtime);
  if (problem) throw badRequest('compile_args_not_accepted', problem, { field });
  const tooManyCompileArgs = countAboveMaximum('compileArgs', compileArgs.length, policy, role && field);
  if (tooManyCompileArgs) throw tooManyCompileArgs;
  if (compileArgs.some((arg) => arg.includes('\0'))) throw badRequest('invalid_args', `${role ? `${field}: ` : ''}compile arguments may not contain NUL`, role ? { field } : undefined);
  return compileArgs;
}

function submittedCompileLimits(submission: SourceSubmission, runtime: Runtime, role?: JudgeRole): Partial<Limits> | undefined {
  if (!submission.compileLimits) return undefined;
  const field = `${prefixOf(role)}compileLimits`;
  // Dropping them would leave the caller believing a compile was bounded that never happens.
  if (!runtime.compile) {
    throw badRequest('no_compile_step', `runtime "${runtime.id}" has no compile step: ${field} does not apply`, { field });
  }
  return checkLimits(runtime, submission.compileLimits, runtime.maxLimits, field, 'compile');
}

function toJobJudgeProgram(role: JudgeRole, submission: JudgeProgramSubmission, runtimes: readonly Runtime[], policy: SubmissionPolicy): { request: JobJudgeProgram; runtime: Runtime } {
  let runtime: Runtime;
  try {
    runtime = requireRuntime(runtimes, submission.language, submission.version);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    throw new ApiError(error.statusCode, error.code, `${role}: ${error.message}`, { ...error.details, field: `${role}.language` });
  }
  const request: JobJudgeProgram = {
    runtimeId: runtime.id,
    files: submittedFiles(submission, runtime, policy, role),
    limits: checkLimits(runtime, submission.limits, runtime.maxLimits, `${role}.limits`),
  };
  const compileArgs = submittedCompileArgs(submission, runtime, policy, role);
  if (compileArgs.length > 0) request.compileArgs = compileArgs;
  const compileLimits = submittedCompileLimits(submission, runtime, role);
  if (compileLimits) request.compileLimits = compileLimits;
  return { request, runtime };
}

export function checkWebhookUrl(text: string, destinations: OutboundPolicy): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badRequest('invalid_webhook_url', `webhookUrl "${text}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw badRequest('invalid_webhook_url', `webhookUrl must be http or https, not ${url.protocol}`);
  }
  // A host name is checked where it is resolved, as the webhook is sent (the worker's settings).
  const refusal = destinations.refusalOf(url);
  if (refusal) throw badRequest('webhook_url_not_allowed', `webhookUrl: ${refusal.message}`);
  return url.toString();
}
