// A Judge0 submission's request attributes (source_code, stdin, language_id, the limits, ...) as
// Judge0 stores them at creation (Submission#set_defaults fills what was left out) and returns
// them on every read. They come from the queued JobRequest; what a JobRequest cannot say (the
// language id as submitted, expected output bytes, cpu_extra_time, the argument string) travels
// in its `front` attributes, written by the Judge0 front when it translates the submission.
import { ExecutorError } from '../../executor/errors.js';
import { effectiveLimits } from '../../executor/limits.js';
import { expectedOutputBytes, type JobFront, type JobRequest } from '../../jobs/model.js';
import type { Limits } from '../../sandbox/types.js';
import { bytesToKiB, msToSeconds } from '../../units.js';
import type { Judge0Languages } from './judge0-languages.js';

/** What the Judge0 front keeps of a submission beyond the JobRequest. */
export interface Judge0FrontAttributes {
  /** As submitted: an accepted alias (92) reads back as 92, not as the well-known id (71). */
  languageId: number;
  /** The exact bytes, as submitted (the JobRequest's tests hold them for the comparison, once per
   * run, as text where they are UTF-8). */
  expectedOutputBase64: string | null;
  /** Seconds; validated and not applied (our CPU limit is hard). */
  cpuExtraTimeSeconds: number | null;
  /** The string as submitted (the JobRequest holds it split). */
  commandLineArguments: string | null;
  /** The string as submitted (the JobRequest holds it split, as compileArgs); absent in
   * submissions queued before compiler options were taken. */
  compilerOptions?: string | null;
  /** The additional_files zip as received (base64); absent in submissions queued before they were taken. */
  additionalFilesBase64?: string | null;
  callbackUrl: string | null;
}

export function judge0Front(attributes: Judge0FrontAttributes): JobFront {
  return { api: 'judge0', attributes: { ...attributes } };
}

export function readJudge0Front(request: JobRequest): Partial<Judge0FrontAttributes> {
  return request.front?.api === 'judge0' ? (request.front.attributes as Partial<Judge0FrontAttributes>) : {};
}

/** Rails renders a decimal column as BigDecimal#to_s: at least one decimal ("5.0", "2.5", "0.012"),
 * and a float stored in it with Float::DIG (15) significant digits: an average of three runs' times
 * reads "0.0156666666666667". */
export function rubyDecimal(value: number): string {
  const text = String(Number(value.toPrecision(15)));
  return text.includes('.') ? text : `${text}.0`;
}

const bytesOrNull = (base64: string | null | undefined): Buffer | null => {
  if (base64 === null || base64 === undefined) return null;
  const bytes = Buffer.from(base64, 'base64');
  return bytes.length === 0 ? null : bytes;
};

/** The request half of a submission's attributes; text as bytes, as judge0Attributes hands them on. */
export function judge0RequestAttributes(request: JobRequest, languages: Judge0Languages): Record<string, unknown> {
  const front = readJudge0Front(request);
  const language = front.languageId !== undefined ? languages.byLanguageId(front.languageId) : languages.byRuntime(request.runtimeId);
  const languageId = front.languageId ?? language?.id ?? null;
  const firstTest = request.tests?.[0];
  const expected = firstTest && expectedOutputBytes(firstTest);
  const attributes: Record<string, unknown> = {
    // The entry file comes first (every front puts it there).
    source_code: bytesOrNull(request.files[0]?.contentBase64),
    language_id: languageId,
    language: language && languageId !== null ? { id: languageId, name: language.name } : null,
    stdin: bytesOrNull(request.stdinBase64),
    expected_output: front.expectedOutputBase64 !== undefined ? bytesOrNull(front.expectedOutputBase64) : (expected ?? null),
    // One test per run (see translateJudge0Submission).
    number_of_runs: request.tests?.length ?? 1,
    cpu_extra_time: rubyDecimal(front.cpuExtraTimeSeconds ?? 0),
    command_line_arguments: front.commandLineArguments ?? (request.args.length > 0 ? request.args.join(' ') : null),
    callback_url: front.callbackUrl ?? null,
    compiler_options: front.compilerOptions ?? (request.compileArgs && request.compileArgs.length > 0 ? request.compileArgs.join(' ') : null),
    redirect_stderr_to_stdout: request.stderrToStdout === true,
    additional_files: front.additionalFilesBase64 ?? null,
    // Refused when set (422), so every stored submission has them off.
    enable_per_process_and_thread_time_limit: false,
    enable_per_process_and_thread_memory_limit: false,
    enable_network: false,
  };
  if (language !== undefined && language.runtime.id === request.runtimeId) {
    // The limits the run had: the runtime's defaults where the submission named none (Judge0's
    // set_defaults fills them from its configuration the same way), in Judge0's units.
    const { runtime } = language;
    let limits: Limits;
    try {
      limits = effectiveLimits(runtime.defaultLimits, runtime.maxLimits, request.limits);
    } catch (error) {
      // A stored request whose limits no worker takes (queued by an older version, which let a
      // CPU time limit round to 0): its limits are not shown, and the rest of it still is.
      if (error instanceof ExecutorError) return attributes;
      throw error;
    }
    Object.assign(attributes, {
      cpu_time_limit: rubyDecimal(msToSeconds(limits.cpuTimeMs)),
      wall_time_limit: rubyDecimal(msToSeconds(limits.wallTimeMs)),
      memory_limit: bytesToKiB(limits.memoryBytes),
      stack_limit: bytesToKiB(limits.stackBytes),
      max_processes_and_or_threads: limits.pids,
      max_file_size: bytesToKiB(limits.fileSizeBytes),
    });
  }
  return attributes;
}
