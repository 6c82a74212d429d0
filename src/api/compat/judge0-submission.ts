// A JobRecord as a Judge0 CE submission (app/serializers/submission_serializer.rb): the
// attributes Judge0 returns, the `fields` selection, base64 the way Ruby's Base64.encode64 writes
// it, and Judge0's units (time and wall_time in seconds as Rails renders decimals, memory in KB).
import type { JobRecord, StoredStage } from '../../jobs/model.js';
import { bytesToKiB, msToSeconds } from '../../units.js';
import type { Judge0Languages } from './judge0-languages.js';
import { judge0RequestAttributes, rubyDecimal } from './judge0-request-attributes.js';
import { JUDGE0_STATUSES, judge0RunOutcome, type Judge0Status } from './judge0-statuses.js';
import { effectiveVerdict, isUtf8, stderrBytes, stdoutBytes } from './stage-output.js';

/** Every attribute a submission has (Submission.column_names + status + language - id), v1.13. */
export const JUDGE0_ATTRIBUTES = [
  'source_code', 'language_id', 'stdin', 'expected_output', 'stdout', 'status_id', 'created_at', 'finished_at',
  'time', 'memory', 'stderr', 'token', 'number_of_runs', 'cpu_time_limit', 'cpu_extra_time', 'wall_time_limit',
  'memory_limit', 'stack_limit', 'max_processes_and_or_threads', 'enable_per_process_and_thread_time_limit',
  'enable_per_process_and_thread_memory_limit', 'max_file_size', 'compile_output', 'exit_code', 'exit_signal',
  'message', 'wall_time', 'compiler_options', 'command_line_arguments', 'redirect_stderr_to_stdout', 'callback_url',
  'additional_files', 'enable_network', 'started_at', 'queued_at', 'updated_at', 'queue_host', 'execution_host',
  'status', 'language',
] as const;
export type Judge0Attribute = (typeof JUDGE0_ATTRIBUTES)[number];

export const JUDGE0_DEFAULT_FIELDS: Judge0Attribute[] = ['token', 'time', 'memory', 'stdout', 'stderr', 'compile_output', 'message', 'status'];

/** Attributes that are text: sent base64-encoded with `base64_encoded=true`. */
const TEXT_ATTRIBUTES = new Set<Judge0Attribute>(['source_code', 'stdin', 'expected_output', 'stdout', 'stderr', 'compile_output', 'message']);

/** Judge0's 400s with `{error}`: bad `fields`, text that is not UTF-8. */
export class Judge0BadRequestError extends Error {
  override readonly name = 'Judge0BadRequestError';
  readonly statusCode = 400;
}

export const NOT_UTF8_MESSAGE =
  'some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter';

/** Fields::Submission: a comma list of attribute names, `*` for all, empty for the defaults. */
export function parseFields(fields: unknown): Judge0Attribute[] {
  const text = typeof fields === 'string' ? fields.trim() : '';
  if (text === '') return JUDGE0_DEFAULT_FIELDS;
  if (text === '*') return [...JUDGE0_ATTRIBUTES];
  const requested = text.split(',').map((field) => field.trim()).filter((field) => field !== '');
  const invalid = requested.filter((field) => !(JUDGE0_ATTRIBUTES as readonly string[]).includes(field));
  if (invalid.length > 0) throw new Judge0BadRequestError(`invalid fields: [${invalid.join(', ')}]`);
  return requested as Judge0Attribute[];
}

/** Ruby's Base64.encode64: RFC 2045 lines of 60 characters, each ending in "\n". */
export function rubyEncode64(bytes: Uint8Array): string {
  const plain = Buffer.from(bytes).toString('base64');
  return plain === '' ? '' : `${plain.match(/.{1,60}/g)!.join('\n')}\n`;
}

const average = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

/** Judge0's `time`/`wall_time`: isolate measures each run in whole milliseconds, Judge0 averages
 * the runs into a decimal column, and Rails renders it as BigDecimal#to_s does — no trailing
 * zeros, at least one decimal ("0.012", "0.01", "1.0"). */
export function judge0Seconds(runTimesMs: number[]): string {
  return rubyDecimal(msToSeconds(average(runTimesMs.map((ms) => Math.round(ms)))));
}

const nonEmpty = (bytes: Buffer): Buffer | null => (bytes.length === 0 ? null : bytes);

/** What a finished (or unfinished) job says in Judge0's attributes, before serialization. */
interface Judge0Outcome {
  status: Judge0Status;
  time: string | null;
  wallTime: string | null;
  memoryKiB: number | null;
  stdout: Buffer | null;
  stderr: Buffer | null;
  compileOutput: Buffer | null;
  message: string | null;
  exitCode: number | null;
  exitSignal: number | null;
  numberOfRuns: number | null;
}

const EMPTY_OUTCOME = {
  time: null,
  wallTime: null,
  memoryKiB: null,
  stdout: null,
  stderr: null,
  compileOutput: null,
  message: null,
  exitCode: null,
  exitSignal: null,
  numberOfRuns: null,
};

/** Judge0 compiles with stderr redirected to stdout into compile_output. */
const compileOutputOf = (compile: StoredStage): Buffer | null => nonEmpty(Buffer.concat([stdoutBytes(compile), stderrBytes(compile)]));

/** A test of a /v1 job with a judge program (an interactor, a checker) that it did not judge: it
 * ended otherwise than testlib's verdicts (its own failure, a limit), though the program's run was
 * ok. Judge0 has no judge programs; read through it, such a test is the service's Internal Error,
 * never Accepted. */
function unjudged(stage: StoredStage): StoredStage | undefined {
  const judge = stage.checker ?? stage.interactor;
  return judge && stage.verdict === 'ok' && stage.passed === null ? judge : undefined;
}

/** How a judge program ended, in words: "exit 3", "signal SIGSEGV", or its limit's verdict. */
function judgeEnd(judge: StoredStage): string {
  if (judge.verdict === 'runtime_error' && judge.exitCode !== null) return `exit ${judge.exitCode}`;
  if (judge.verdict === 'signaled' && judge.signalName) return `signal ${judge.signalName}`;
  return judge.verdict;
}

/** The runs Judge0 would have made: it stops at the first one that is not Accepted. A Judge0
 * submission's job stops there itself (stopOnFailure); a /v1 job read here, or one queued by an
 * older version, may have run on. */
function runsMade(stages: StoredStage[]): StoredStage[] {
  const firstBad = stages.findIndex((stage) => stage.verdict !== 'ok' || stage.passed === false || unjudged(stage) !== undefined);
  return firstBad === -1 ? stages : stages.slice(0, firstBad + 1);
}

export function judge0Outcome(record: JobRecord): Judge0Outcome {
  switch (record.status) {
    case 'queued':
      return { status: JUDGE0_STATUSES.queue, ...EMPTY_OUTCOME };
    case 'running':
      return { status: JUDGE0_STATUSES.process, ...EMPTY_OUTCOME };
    case 'failed':
      return { status: JUDGE0_STATUSES.boxerr, ...EMPTY_OUTCOME, message: record.failure?.message ?? 'the job failed' };
    case 'cancelled':
    case 'done':
      break;
  }
  const result = record.result;
  if (result === undefined) {
    return { status: JUDGE0_STATUSES.boxerr, ...EMPTY_OUTCOME, message: 'the submission was cancelled' };
  }
  // A judge program's compile that failed is the compile a Judge0 reader is told about.
  const decidingCompile = result.failedCompile ? result[result.failedCompile] : result.compile;
  const compileOutput = decidingCompile ? compileOutputOf(decidingCompile) : null;
  const stages = result.tests ?? (result.run ? [result.run] : []);
  if (stages.length === 0) {
    const compile = decidingCompile;
    if (compile?.verdict === 'internal_error') {
      return { status: JUDGE0_STATUSES.boxerr, ...EMPTY_OUTCOME, compileOutput, message: compile.error?.message ?? 'internal error' };
    }
    const compileVerdict = compile ? effectiveVerdict(compile) : undefined;
    if (compileVerdict === 'cpu_time_limit' || compileVerdict === 'wall_time_limit') {
      return { status: JUDGE0_STATUSES.ce, ...EMPTY_OUTCOME, compileOutput: Buffer.from('Compilation time limit exceeded.') };
    }
    if (result.verdict === 'compile_error') return { status: JUDGE0_STATUSES.ce, ...EMPTY_OUTCOME, compileOutput };
    return { status: JUDGE0_STATUSES.boxerr, ...EMPTY_OUTCOME, compileOutput, message: `the job ended (${result.verdict}) without running` };
  }
  const runs = runsMade(stages);
  const last = runs[runs.length - 1]!;
  const judgeOfLast = unjudged(last);
  const outcome = judgeOfLast
    ? { status: JUDGE0_STATUSES.boxerr, message: `the judge program judged nothing (${judgeEnd(judgeOfLast)})`, exitCode: null, exitSignal: null }
    : judge0RunOutcome(last);
  return {
    status: outcome.status,
    // Judge0 averages time and memory over its runs (IsolateJob#perform); wall_time is the last
    // run's, as its verify step left it.
    time: judge0Seconds(runs.map((run) => run.cpuTimeMs)),
    wallTime: judge0Seconds([last.wallTimeMs]),
    memoryKiB: Math.trunc(average(runs.map((run) => bytesToKiB(run.peakMemoryBytes)))),
    stdout: nonEmpty(stdoutBytes(last)),
    stderr: nonEmpty(stderrBytes(last)),
    compileOutput,
    message: outcome.message,
    exitCode: outcome.exitCode,
    exitSignal: outcome.exitSignal,
    // The runs asked for: those made and those stopped at the first that was not Accepted.
    numberOfRuns: stages.length + (result.skippedTests ?? 0),
  };
}

/** Every attribute of the submission; text as bytes, to be encoded by `serializeSubmission`. */
export function judge0Attributes(record: JobRecord, languages: Judge0Languages): Record<Judge0Attribute, unknown> {
  const outcome = judge0Outcome(record);
  // Without its request (a queued job cancelled: its job is removed), the language is the one it ran as, if it ran.
  const language = record.result ? languages.byRuntime(record.result.runtime.id) : undefined;
  const attributes = Object.fromEntries(JUDGE0_ATTRIBUTES.map((name) => [name, null])) as Record<Judge0Attribute, unknown>;
  Object.assign(attributes, {
    language_id: language?.id ?? null,
    language: language ? { id: language.id, name: language.name } : null,
    number_of_runs: outcome.numberOfRuns,
  });
  if (record.request) Object.assign(attributes, judge0RequestAttributes(record.request, languages));
  Object.assign(attributes, {
    token: record.id,
    status_id: outcome.status.id,
    status: { id: outcome.status.id, description: outcome.status.description },
    created_at: record.createdAt,
    queued_at: record.createdAt,
    started_at: record.startedAt ?? null,
    finished_at: record.finishedAt ?? null,
    updated_at: record.finishedAt ?? record.startedAt ?? record.createdAt,
    time: outcome.time,
    wall_time: outcome.wallTime,
    memory: outcome.memoryKiB,
    stdout: outcome.stdout,
    stderr: outcome.stderr,
    compile_output: outcome.compileOutput,
    message: outcome.message,
    exit_code: outcome.exitCode,
    exit_signal: outcome.exitSignal,
  });
  return attributes;
}

/** The requested fields, text base64-encoded or checked to be UTF-8 (else Judge0's 400). */
export function serializeSubmission(
  attributes: Record<Judge0Attribute, unknown>,
  fields: Judge0Attribute[],
  base64Encoded: boolean,
): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const field of fields) {
    const value = attributes[field];
    if (!TEXT_ATTRIBUTES.has(field) || value === null || value === undefined) {
      body[field] = value ?? null;
      continue;
    }
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
    if (base64Encoded) {
      body[field] = rubyEncode64(bytes);
    } else {
      if (!isUtf8(bytes)) throw new Judge0BadRequestError(NOT_UTF8_MESSAGE);
      body[field] = bytes.toString('utf8');
    }
  }
  return body;
}
