// Our stored results → Piston v2's execute response. Each stage carries isolate's vocabulary as
// Piston passes it through (api/src/job.js): a two-letter `status` (RE, SG, TO, OL, EL, XX) and
// isolate's `message`; time in ms, memory in bytes.
import type { Runtime } from '../../images/types.js';
import { pistonVersion } from './piston-runtimes.js';
import type { JobRecord, StoredStage } from '../../jobs/model.js';
import { effectiveVerdict, lossyText, stderrBytes, stdoutBytes } from './stage-output.js';

export type PistonStatus = 'RE' | 'SG' | 'TO' | 'OL' | 'EL' | 'XX';

export interface PistonStage {
  stdout: string;
  stderr: string;
  output: string;
  code: number | null;
  signal: string | null;
  message: string | null;
  status: PistonStatus | null;
  cpu_time: number;
  wall_time: number;
  memory: number;
}

export interface PistonExecuteResponse {
  language: string;
  version: string;
  run: PistonStage;
  compile?: PistonStage;
}

interface StageEnding {
  status: PistonStatus | null;
  message: string | null;
  code: number | null;
  signal: string | null;
}

/** How a stage ended, in Piston's terms. Limits kill with SIGKILL, which Piston reports. */
export function pistonEnding(stage: StoredStage): StageEnding {
  const killed = { code: null, signal: 'SIGKILL' };
  switch (effectiveVerdict(stage)) {
    case 'ok':
      return { status: null, message: null, code: stage.exitCode, signal: null };
    case 'runtime_error':
      return { status: 'RE', message: `Exited with error status ${stage.exitCode}`, code: stage.exitCode, signal: null };
    case 'signaled':
      return {
        status: 'SG',
        message: `Caught fatal signal ${stage.signal}`,
        code: null,
        signal: stage.signalName,
      };
    // isolate reports a cgroup OOM kill as death by SIGKILL.
    case 'memory_limit':
      return { status: 'SG', message: `Caught fatal signal ${stage.signal ?? 9}`, code: null, signal: stage.signalName ?? 'SIGKILL' };
    case 'cpu_time_limit':
      return { status: 'TO', message: 'Time limit exceeded', ...killed };
    case 'wall_time_limit':
      return { status: 'TO', message: 'Time limit exceeded (wall clock)', ...killed };
    case 'output_limit':
      return stage.stdoutTruncated || !stage.stderrTruncated
        ? { status: 'OL', message: 'stdout length exceeded', ...killed }
        : { status: 'EL', message: 'stderr length exceeded', ...killed };
    case 'cancelled':
      return { status: 'XX', message: 'the job was cancelled', ...killed };
    case 'internal_error':
      return { status: 'XX', message: stage.error?.message ?? 'internal error', code: null, signal: null };
    // A job-level verdict; a stage never carries it, but the stored type allows it.
    case 'compile_error':
      return { status: 'RE', message: 'Compilation failed', code: stage.exitCode, signal: stage.signalName };
  }
}

export function pistonStage(stage: StoredStage): PistonStage {
  const stdout = lossyText(stdoutBytes(stage));
  const stderr = lossyText(stderrBytes(stage));
  return {
    stdout,
    stderr,
    // Piston interleaves the streams in arrival order; we keep them apart, so stdout comes first.
    output: stdout + stderr,
    ...pistonEnding(stage),
    cpu_time: stage.cpuTimeMs,
    wall_time: stage.wallTimeMs,
    memory: stage.peakMemoryBytes,
  };
}

/** The job could not produce a Piston response (failed, or still not finished). Piston: 500. */
export class PistonExecutionError extends Error {
  override readonly name = 'PistonExecutionError';
  readonly statusCode = 500;
}

/** The job did not finish within the longest wait (CELLBLOCK_MAX_WAIT_MS), or before the API
 * began to stop (`stopping`: the wait ended then), and was cancelled: the queue was too long, or
 * the program too slow, for a synchronous answer. Not the server failing (a 500): 503 with
 * Retry-After (1 s for a stop, as a refused request's shutting_down: another API answers it). */
export class PistonWaitTimeoutError extends Error {
  override readonly name = 'PistonWaitTimeoutError';
  readonly statusCode = 503;
  readonly retryAfterSeconds: number;
  constructor(jobId: string, ended: { maxWaitMs: number } | 'stopping', cancelled: boolean) {
    const after = cancelled ? 'and was cancelled' : 'and is being cancelled (it may still run a moment)';
    super(
      ended === 'stopping'
        ? `job ${jobId} had not finished when the server began to stop ${after}; send it again (to another server)`
        : `job ${jobId} did not finish within ${ended.maxWaitMs} ms (CELLBLOCK_MAX_WAIT_MS) ${after}; retry later`,
    );
    this.retryAfterSeconds = ended === 'stopping' ? 1 : 5;
  }
}

export function pistonResponse(record: JobRecord, runtime: Runtime): PistonExecuteResponse {
  if (record.status === 'failed') throw new PistonExecutionError(record.failure?.message ?? 'the job failed');
  const result = record.result;
  if (record.status === 'queued' || record.status === 'running' || result === undefined) {
    throw new PistonExecutionError(`the job did not finish in time (status ${record.status})`);
  }
  const compile = result.compile ? pistonStage(result.compile) : undefined;
  const run = result.run ? pistonStage(result.run) : compile;
  if (run === undefined) throw new PistonExecutionError(`the job ended (${result.verdict}) without running`);
  const response: PistonExecuteResponse = { language: runtime.language, version: pistonVersion(runtime), run };
  // Piston puts `run` first and `compile` after it only for compiled languages; when the compile
  // failed, `run` repeats the compile stage ("backward compatibility" in v2.js).
  if (compile) response.compile = compile;
  return response;
}
