// The job as the queue, the workers and every API front (ours, Piston's, Judge0's) see it.
// One representation, stored in Redis as JSON; fronts translate to and from it.
import { isUtf8 } from 'node:buffer';
import type { Limits } from '../sandbox/types.js';
import type { Comparison, JobVerdict, JudgeCompileStage, LiveStageName, TerminalSize } from '../executor/types.js';

export type { TerminalSize };

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** A validated submission, as queued. Contents are base64 so that any bytes survive JSON. */
export interface JobRequest {
  runtimeId: string;
  /** The runtime's variant that runs it (ExecuteRequest.variant: a front's way of running the
   * language, Piston's Java launcher); absent: the runtime's own stages. */
  variant?: string;
  files: { name: string; contentBase64: string }[];
  stdinBase64: string;
  args: string[];
  /** The compile's own arguments (compiler flags); absent when none. */
  compileArgs?: string[];
  /** Each run's stderr written into its stdout (ExecuteRequest.stderrToStdout); absent when not. */
  stderrToStdout?: true;
  /** The compile gets the entry file alone (ExecuteRequest.compileEntryOnly); absent when not. */
  compileEntryOnly?: true;
  /** Files the program writes, returned with each run (ExecuteRequest.outputFiles); absent when none. */
  outputFiles?: string[];
  limits: Partial<Limits>;
  compileLimits?: Partial<Limits>;
  tests?: JobTest[];
  /** ExecuteRequest.stopOnFailure; absent when not. */
  stopOnFailure?: true;
  /** How the tests' stdout is compared (ExecuteRequest.comparison); absent: `lines`. */
  comparison?: Comparison;
  /** An interactive job's interactor (ExecuteRequest.interactor); absent when none. */
  interactor?: JobJudgeProgram;
  /** A checked job's checker (ExecuteRequest.checker); absent when none. */
  checker?: JobJudgeProgram;
  /** A live job: its run's stdin comes from its session as the client sends it, and its stages'
   * output goes back as it is written (JobClient.submitLive); absent when not. */
  live?: true;
  /** A live job's terminal (LiveIo.terminal): its run's stdin, stdout and stderr are one
   * terminal of this size; absent: three pipes. */
  terminal?: TerminalSize;
  webhookUrl?: string;
  /** What a compat front was sent that has no field above (Judge0's language id as submitted, its
   * expected output's bytes, ...), stored verbatim with the job so that the front can answer reads
   * in its own terms. Workers ignore it. */
  front?: JobFront;
}

/** One test as queued. Its expected output, when it has one, is text (UTF-8) or, where its bytes
 * are not UTF-8 (a Judge0 expected_output sent base64), those bytes: one of the two fields, never
 * both (expectedOutputFields). */
export interface JobTest {
  stdinBase64: string;
  expectedOutput?: string;
  /** The expected output's bytes, base64; a later field (LATER_JOB_FIELDS), so sent only where the
   * text cannot carry them. */
  expectedOutputBase64?: string;
}

/** A test's expected output as queued: text where the bytes are UTF-8 (the text is then exactly
 * those bytes, and every worker reads it), else the bytes themselves, which only workers that know
 * `tests[].expectedOutputBase64` read (an older one would run the test with no expected output). */
export function expectedOutputFields(bytes: Buffer): Pick<JobTest, 'expectedOutput' | 'expectedOutputBase64'> {
  return isUtf8(bytes) ? { expectedOutput: bytes.toString('utf8') } : { expectedOutputBase64: bytes.toString('base64') };
}

/** A queued test's expected output as bytes (either form); undefined when it has none. */
export function expectedOutputBytes(test: JobTest): Buffer | undefined {
  if (test.expectedOutputBase64 !== undefined) return Buffer.from(test.expectedOutputBase64, 'base64');
  return test.expectedOutput === undefined ? undefined : Buffer.from(test.expectedOutput, 'utf8');
}

/** The JobRequest fields added after workers first shipped. A worker of an older version ignores
 * them and would run the job without them (a program built without its flags, say), so a worker
 * lists those it knows in its liveness (WorkerLiveness.jobFields), and the queue accepts a job that
 * has one only while every live worker lists it: during a rolling upgrade, 503 until the old
 * workers are gone (WorkersBehindError). A field added later goes here too, and so does a value
 * added later to a field already here (a comparison mode: as `comparison:<mode>`, say), since a
 * worker that lists the field would refuse the value. */
export const LATER_JOB_FIELDS = [
  'compileArgs',
  'stderrToStdout',
  'compileEntryOnly',
  'outputFiles',
  'interactor',
  'checker',
  'comparison',
  'stopOnFailure',
  'live',
  'terminal',
  // A worker that knows the field refuses a variant its runtime files lack (an explicit failure).
  'variant',
  // A field of a test (JobTest): listed by its path.
  'tests[].expectedOutputBase64',
] as const;
export type LaterJobField = (typeof LATER_JOB_FIELDS)[number];

/** A runtime variant as a worker's liveness lists it beside LATER_JOB_FIELDS (`variant:java/piston`).
 * Variants are data (images/README.md, "Variants"): one added to a runtime file later comes with no
 * new field, and a worker that knows `variant` but not that variant would fail the job
 * (unknown_variant). So a worker lists every variant its runtime files define, and a job naming one
 * is taken only while every live worker lists it: 503 during the rollout, as for a field. */
export function variantJobField(runtimeId: string, variant: string): string {
  return `variant:${runtimeId}/${variant}`;
}

/** What a live worker must list (WorkerLiveness.jobFields) to be given this job. */
export function laterFieldsOf(request: JobRequest): string[] {
  const fields: string[] = LATER_JOB_FIELDS.filter((field) =>
    field === 'tests[].expectedOutputBase64' ? (request.tests ?? []).some((test) => test.expectedOutputBase64 !== undefined) : request[field] !== undefined,
  );
  if (request.variant !== undefined) fields.push(variantJobField(request.runtimeId, request.variant));
  return fields;
}

/** ExecuteRequest.interactor or .checker as queued: contents base64, as JobRequest's files. */
export interface JobJudgeProgram {
  runtimeId: string;
  files: { name: string; contentBase64: string }[];
  compileArgs?: string[];
  limits: Partial<Limits>;
  compileLimits?: Partial<Limits>;
}

/** A compat front's own request attributes, JSON values only. */
export interface JobFront {
  api: 'judge0';
  attributes: Record<string, string | number | boolean | null>;
}

/** A stage result as stored: outputs base64, everything else as RunResult. */
export interface StoredStage {
  verdict: JobVerdict;
  exitCode: number | null;
  signal: number | null;
  signalName: string | null;
  stdoutBase64: string;
  stderrBase64: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  cpuTimeMs: number;
  wallTimeMs: number;
  peakMemoryBytes: number;
  error?: { step: string; errno: number; code: string; message: string };
  /** A judge program's compile kept from an earlier job (StageResult.cached). */
  cached?: true;
  /** Tests only. */
  passed?: boolean | null;
  /** Runs of a job that asked for output files (OutputFile, content base64). */
  outputFiles?: StoredOutputFile[];
  /** Tests of an interactive job: the interactor's run beside the program's. */
  interactor?: StoredStage;
  /** Tests of a checked job: the checker's run after the program's (when that ended ok). */
  checker?: StoredStage;
}

export interface StoredOutputFile {
  name: string;
  contentBase64: string | null;
  sizeBytes: number;
  truncated: boolean;
  problem?: 'not_found' | 'not_a_regular_file';
}

export interface JobResult {
  verdict: JobVerdict;
  runtime: { id: string; language: string; version: string };
  compile?: StoredStage;
  /** An interactive job's interactor compile. */
  interactorCompile?: StoredStage;
  /** A checked job's checker compile. */
  checkerCompile?: StoredStage;
  /** ExecuteResult.failedCompile. */
  failedCompile?: JudgeCompileStage;
  run?: StoredStage;
  tests?: StoredStage[];
  /** ExecuteResult.skippedTests. */
  skippedTests?: number;
  /** Time from accepted to taken by a worker. */
  queueWaitMs: number;
}

export interface JobRecord {
  id: string;
  status: JobStatus;
  createdAt: string;
  /** When the last worker that started it took it; absent on a job failed at a take (see toRecord). */
  startedAt?: string;
  finishedAt?: string;
  result?: JobResult;
  /** The submission as queued (for a queued job cancelled before it ran, kept with its cancel marker). */
  request?: JobRequest;
  /** Times a worker has started the job: 2 after its first worker died and another took it over. */
  attempts?: number;
  /** Set with status `failed`: the service could not run the job (not the program's fault). */
  failure?: { code: string; message: string };
}

/** The job an idempotency key names. `replay`: this try did not queue it, an earlier one did (or
 * a cancel came between overlapping tries): it may have run, or been cancelled, since, so it is to
 * be answered as it is now, not as just queued. */
export interface IdempotentSubmission {
  id: string;
  replay: boolean;
}

/** What an API front needs from the job service; implemented over BullMQ in src/queue. */
export interface JobClient {
  submit(request: JobRequest): Promise<string>;
  /** Submits at most once per key: while the job a key named is kept (its result's lifetime), the
   * same key and request answer its id; the same key with another request is an
   * IdempotencyConflictError. */
  submitOnce(request: JobRequest, idempotencyKey: string): Promise<IdempotentSubmission>;
  submitBatch(requests: JobRequest[]): Promise<string[]>;
  get(id: string): Promise<JobRecord | undefined>;
  /** Resolves when the job is done/failed/cancelled or the timeout passes (then its current record). */
  wait(id: string, timeoutMs: number): Promise<JobRecord | undefined>;
  cancel(id: string): Promise<JobRecord | undefined>;
  /** Queues a live job (its request's `live` set here) and listens to it: `onEvent` hears it
   * taken, its stages and their output as they happen, and last its record (`end`). */
  submitLive(request: JobRequest, onEvent: (event: LiveEvent) => void): Promise<LiveSession>;
}

/** A live job's stages: its compile (where its runtime compiles), then its run. */
export type LiveStage = LiveStageName;

/** How a live job's stage ended: its StoredStage without the outputs, which came as events. */
export interface LiveExit {
  verdict: JobVerdict;
  exitCode: number | null;
  signal: number | null;
  signalName: string | null;
  cpuTimeMs: number;
  wallTimeMs: number;
  peakMemoryBytes: number;
}

/** What a live job's session hears, in order. `started`: a worker took the job and has the
 * sandbox of its first stage (just before that stage's `stage`), and stdin written from now on
 * reaches the program once its run starts (what was written before is sent then).
 * `output`: the compile's once it ended, the run's as the program writes it. `end`: the last
 * event, with the job's record once it finished (done, failed or cancelled; undefined when it no
 * longer exists); its result's outputs are the whole of what came as events. `inputLost`: stdin
 * could not be passed on (Redis unreachable), so the program's input has a gap: the fronts end the
 * session, cancelling the job. */
export type LiveEvent =
  | { type: 'started' }
  | { type: 'stage'; stage: LiveStage }
  | { type: 'output'; stage: LiveStage; stream: 'stdout' | 'stderr'; data: Buffer }
  | { type: 'exit'; stage: LiveStage; exit: LiveExit }
  | { type: 'inputLost' }
  | { type: 'end'; record: JobRecord | undefined };

export interface LiveSession {
  readonly id: string;
  /** Sends bytes to the program's stdin (the fronts bound how many). Ignored after endStdin() and
   * after the end. */
  write(data: Uint8Array): void;
  /** The program reads end of file once what was written has reached it (on a terminal: the
   * terminal's end-of-file character, StreamingRun.end). */
  endStdin(): void;
  /** A live job's terminal has a new size (the program gets SIGWINCH once it runs); nothing
   * without a terminal. Ignored after the end. */
  resize(size: TerminalSize): void;
  /** Cancels the job: queued, it never runs; running, it is killed (verdict cancelled). The `end`
   * event follows. */
  cancel(): Promise<void>;
  /** Stops listening (the client went away): no event after this. The job runs to its end unless
   * cancelled. */
  close(): void;
}
