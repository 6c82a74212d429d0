// Between the executor's in-memory results and the JSON that lives in Redis: outputs become
// base64 so that any bytes survive, every other field is kept as the executor reported it.
import type { ExecuteRequest, ExecuteResult, ExpectedOutputReading, StageResult, TestResult } from '../executor/types.js';
import { expectedOutputBytes, type JobRequest, type JobResult, type JobTest, type StoredStage } from '../jobs/model.js';

/** How an output's bytes are written into a stored result's `...Base64` field: base64, or a
 * reference to bytes stored beside the result (result-store.ts). */
export type EncodeOutput = (bytes: Buffer) => string;

const toBase64: EncodeOutput = (bytes) => Buffer.from(bytes).toString('base64');

function storeStage(stage: StageResult, encode: EncodeOutput): StoredStage {
  const stored: StoredStage = {
    verdict: stage.verdict,
    exitCode: stage.exitCode,
    signal: stage.signal,
    signalName: stage.signalName,
    stdoutBase64: encode(stage.stdout),
    stderrBase64: encode(stage.stderr),
    stdoutTruncated: stage.stdoutTruncated,
    stderrTruncated: stage.stderrTruncated,
    cpuTimeMs: stage.metrics.cpuTimeMs,
    wallTimeMs: stage.metrics.wallTimeMs,
    peakMemoryBytes: stage.metrics.peakMemoryBytes,
  };
  if (stage.error) stored.error = stage.error;
  if (stage.cached) stored.cached = true;
  if (stage.outputFiles) {
    stored.outputFiles = stage.outputFiles.map((file) => {
      const { content, ...rest } = file;
      return { ...rest, contentBase64: content === null ? null : encode(content) };
    });
  }
  return stored;
}

function storeTest(test: TestResult, encode: EncodeOutput): StoredStage {
  const stored: StoredStage = { ...storeStage(test, encode), passed: test.passed };
  if (test.interactor) stored.interactor = storeStage(test.interactor, encode);
  if (test.checker) stored.checker = storeStage(test.checker, encode);
  return stored;
}

/** The attempt that produced a result, as the worker that ran it saw it (epoch ms). */
export interface ResultAttempt {
  /** The job's attempts started so far, this one included (BullMQ's attemptsStarted). */
  number: number;
  /** When this attempt took the job (BullMQ's processedOn). */
  startedAtMs: number;
  /** When the worker had the result, an instant before it stored it. */
  finishedAtMs: number;
}

/** Where a result too large for BullMQ's return value is kept (result-store.ts). */
export interface StoredResultPlace {
  /** Its hash (RedisKeys.result). */
  key: string;
  /** Its bytes in Redis (the outputs' and the rest's JSON). */
  bytes: number;
}

/** A job's return value as workers store it: the JobResult, and the attempt that produced it.
 * The completion event carries the return value, so an API that submitted the job (and so knows
 * its request and creation time) has the whole record from the event, without reading the job.
 * A large result is kept apart (`storedIn`): the return value is then its stub, the JobResult's
 * verdict, runtime and queue wait alone, which its readers replace with the result (result-store.ts). */
export interface StoredJobResult extends JobResult {
  attempt?: ResultAttempt;
  storedIn?: StoredResultPlace;
}

/** A stored return value as the JobResult fronts see, and its attempt when the worker wrote one. */
export function splitStoredResult(stored: StoredJobResult): { result: JobResult; attempt?: ResultAttempt } {
  if (stored.attempt === undefined) return { result: stored };
  const { attempt, ...result } = stored;
  return { result, attempt };
}

/** `encode`: how each output is written (base64 by default). */
export function toJobResult(result: ExecuteResult, queueWaitMs: number, attempt?: ResultAttempt, encode: EncodeOutput = toBase64): StoredJobResult {
  const stored: StoredJobResult = { verdict: result.verdict, runtime: result.runtime, queueWaitMs };
  if (result.compile) stored.compile = storeStage(result.compile, encode);
  if (result.interactorCompile) stored.interactorCompile = storeStage(result.interactorCompile, encode);
  if (result.checkerCompile) stored.checkerCompile = storeStage(result.checkerCompile, encode);
  if (result.failedCompile) stored.failedCompile = result.failedCompile;
  if (result.run) stored.run = storeStage(result.run, encode);
  if (result.tests) stored.tests = result.tests.map((test) => storeTest(test, encode));
  if (result.skippedTests !== undefined) stored.skippedTests = result.skippedTests;
  if (attempt) stored.attempt = attempt;
  return stored;
}

/** Job data as a worker finds it in Redis is whatever its producer wrote (an API of another
 * version during an upgrade, another program): its shape is checked, so that a job that is not a
 * JobRequest fails saying which field, not with a TypeError from deep inside. */
export class JobDataError extends Error {
  override readonly name = 'JobDataError';
  constructor(field: string, expected: string) {
    super(`job data: ${field} must be ${expected}`);
  }
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function checkJobRequestShape(data: unknown): asserts data is JobRequest {
  if (!isObject(data)) throw new JobDataError('the job', 'an object (a JobRequest)');
  if (!isString(data.runtimeId)) throw new JobDataError('runtimeId', 'a string');
  if (!Array.isArray(data.files) || !data.files.every((file) => isObject(file) && isString(file.name) && isString(file.contentBase64))) {
    throw new JobDataError('files', 'an array of {name, contentBase64} strings');
  }
  if (!isString(data.stdinBase64)) throw new JobDataError('stdinBase64', 'a string');
  if (data.variant !== undefined && !isString(data.variant)) throw new JobDataError('variant', 'a string');
  for (const field of ['args', 'compileArgs', 'outputFiles'] as const) {
    if (data[field] !== undefined && !(Array.isArray(data[field]) && data[field].every(isString))) throw new JobDataError(field, 'an array of strings');
  }
  for (const field of ['stderrToStdout', 'compileEntryOnly', 'stopOnFailure', 'live'] as const) {
    if (data[field] !== undefined && typeof data[field] !== 'boolean') throw new JobDataError(field, 'a boolean');
  }
  for (const field of ['limits', 'compileLimits'] as const) {
    if (data[field] !== undefined && data[field] !== null && !isObject(data[field])) throw new JobDataError(field, 'an object');
  }
  for (const role of ['interactor', 'checker'] as const) {
    const judge = data[role];
    if (judge === undefined) continue;
    if (!isObject(judge) || !isString(judge.runtimeId)) throw new JobDataError(role, 'an object with a runtimeId string');
    if (!Array.isArray(judge.files) || !judge.files.every((file) => isObject(file) && isString(file.name) && isString(file.contentBase64))) {
      throw new JobDataError(`${role}.files`, 'an array of {name, contentBase64} strings');
    }
    if (judge.compileArgs !== undefined && !(Array.isArray(judge.compileArgs) && judge.compileArgs.every(isString))) {
      throw new JobDataError(`${role}.compileArgs`, 'an array of strings');
    }
    for (const field of ['limits', 'compileLimits'] as const) {
      if (judge[field] !== undefined && judge[field] !== null && !isObject(judge[field])) throw new JobDataError(`${role}.${field}`, 'an object');
    }
  }
  if (data.terminal !== undefined && !(isObject(data.terminal) && typeof data.terminal.rows === 'number' && typeof data.terminal.cols === 'number')) {
    throw new JobDataError('terminal', 'an object with rows and cols numbers');
  }
  if (data.comparison !== undefined && !(isObject(data.comparison) && isString(data.comparison.mode))) throw new JobDataError('comparison', 'an object with a mode string');
  const tests = data.tests;
  // A test's expected output is text or bytes (JobTest), not both: which would be compared is not
  // for the worker to guess.
  const isTest = (test: unknown): boolean =>
    isObject(test) &&
    isString(test.stdinBase64) &&
    (test.expectedOutput === undefined || isString(test.expectedOutput)) &&
    (test.expectedOutputBase64 === undefined || isString(test.expectedOutputBase64)) &&
    (test.expectedOutput === undefined || test.expectedOutputBase64 === undefined);
  if (tests !== undefined && !(Array.isArray(tests) && tests.every(isTest))) {
    throw new JobDataError('tests', 'an array of {stdinBase64, expectedOutput? | expectedOutputBase64?} strings');
  }
}

/** What a worker knows of the API that queued a job, from the job's BullMQ options. */
export interface JobProducer {
  /** The job's options say its API reads results kept apart (queuedByApiReadingResultsApart,
   * result-store.ts): an API that sends an expected output that is not UTF-8 as its bytes
   * (expectedOutputBase64). False: an earlier API, which may have sent such bytes as text. */
  readsResultsApart: boolean;
}

/** The replacement character, which a lossy UTF-8 reading puts for each invalid sequence. */
const REPLACEMENT_CHARACTER = '\ufffd';

/**
 * 'lossy-utf8' where a test's text expected output may be the lossy UTF-8 reading of bytes that
 * are not UTF-8: an API older than `tests[].expectedOutputBase64` sent such a Judge0
 * expected_output as text, each invalid sequence U+FFFD, for workers that read stdout the same way
 * in `lines` (their `exact` and `tokens` compared bytes, as these do). A worker of this version
 * compares bytes, and would fail a program printing exactly the bytes sent (ff fe 41 0a against
 * "\ufffd\ufffdA\n") in a job that such an API queued: while the workers are upgraded first (README,
 * "Upgrading machine by machine"), or after an API is rolled back.
 *
 * Which API queued it: one that sets READS_RESULTS_APART_OPTION came later than
 * expectedOutputBase64 and sends such bytes as bytes, so its text is exactly the bytes sent; one
 * without it may be older. The APIs between the two send bytes as bytes but set no option: a text
 * of theirs holding U+FFFD that was sent (the bytes ef bf bd) is read the lossy way too, and so
 * passes a program printing it or any invalid sequence in its place, which is what a worker before
 * them gave such a job. Without U+FFFD, a text holds no lossy reading, and the two readings agree.
 */
function expectedOutputReading(request: JobRequest, test: JobTest, producer: JobProducer): ExpectedOutputReading | undefined {
  if (producer.readsResultsApart || test.expectedOutput === undefined || !test.expectedOutput.includes(REPLACEMENT_CHARACTER)) return undefined;
  return (request.comparison?.mode ?? 'lines') === 'lines' ? 'lossy-utf8' : undefined;
}

/** `producer`: what the job's options say of the API that queued it (JobProducer). */
export function toExecuteRequest(request: JobRequest, signal: AbortSignal, producer: JobProducer): ExecuteRequest {
  checkJobRequestShape(request);
  const execute: ExecuteRequest = {
    runtimeId: request.runtimeId,
    files: request.files.map((file) => ({ name: file.name, content: Buffer.from(file.contentBase64, 'base64') })),
    stdin: Buffer.from(request.stdinBase64, 'base64'),
    args: request.args ?? [],
    limits: request.limits ?? {},
    signal,
  };
  if (request.variant !== undefined) execute.variant = request.variant;
  if (request.compileLimits) execute.compileLimits = request.compileLimits;
  if (request.compileArgs) execute.compileArgs = request.compileArgs;
  if (request.stderrToStdout === true) execute.stderrToStdout = true;
  if (request.stopOnFailure === true) execute.stopOnFailure = true;
  if (request.compileEntryOnly === true) execute.compileEntryOnly = true;
  if (request.outputFiles) execute.outputFiles = request.outputFiles;
  if (request.comparison) execute.comparison = request.comparison;
  for (const role of ['interactor', 'checker'] as const) {
    const judge = request[role];
    if (!judge) continue;
    const { runtimeId, files, compileArgs, limits, compileLimits } = judge;
    execute[role] = {
      runtimeId,
      files: files.map((file) => ({ name: file.name, content: Buffer.from(file.contentBase64, 'base64') })),
      limits: limits ?? {},
      ...(compileArgs ? { compileArgs } : {}),
      ...(compileLimits ? { compileLimits } : {}),
    };
  }
  if (request.tests) {
    execute.tests = request.tests.map((test) => {
      const stdin = Buffer.from(test.stdinBase64, 'base64');
      // Bytes where the job sent them (an expected output that is not UTF-8), else the text as it was.
      const expectedOutput = test.expectedOutputBase64 !== undefined ? expectedOutputBytes(test) : test.expectedOutput;
      if (expectedOutput === undefined) return { stdin };
      const reading = expectedOutputReading(request, test, producer);
      return reading === undefined ? { stdin, expectedOutput } : { stdin, expectedOutput, expectedOutputReading: reading };
    });
  }
  return execute;
}
