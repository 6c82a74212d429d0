// Piston v2's POST /execute body → our JobRequest, checked in the order and with the messages of
// Piston's api/src/api/v2.js (get_job), so that a client sees the same 400s.
import { FILE_NAME_MAX_BYTES, hasLoneSurrogate, NAME_MAX_BYTES, shownFileName, shownUnits, type LimitFieldName } from '../../executor/check.js';
import type { Runtime } from '../../images/types.js';
import { variantOf } from '../../images/variants.js';
import type { Limits } from '../../sandbox/types.js';
import type { JobRequest } from '../../jobs/model.js';
import type { CountedList, FrontFields } from '../submission.js';
import { findPistonRuntime } from './piston-runtimes.js';
import { stageMaxima } from './stage-maxima.js';
import { isSafeRelativePath } from './stage-output.js';

/** A request Piston would refuse; `message` is Piston's text. Always HTTP 400. */
export class PistonRequestError extends Error {
  override readonly name = 'PistonRequestError';
  readonly statusCode = 400;
}

const FILE_ENCODINGS = ['base64', 'hex', 'utf8'] as const;
type FileEncoding = (typeof FILE_ENCODINGS)[number];

/** Piston's per-stage constraints and the limit each one sets (all in Piston's units = ours). */
// In Piston's order (job.js, get_job): a request over several limits is told of the first.
const CONSTRAINTS = {
  memory_limit: 'memoryBytes',
  timeout: 'wallTimeMs',
  cpu_time: 'cpuTimeMs',
} as const satisfies Record<string, keyof Limits>;
type Constraint = keyof typeof CONSTRAINTS;
type Stage = 'compile' | 'run';

/** Piston's field for one of a stage's limits (`run_memory_limit`), so that a refusal of the
 * worker's check (admissionProblem: a memory limit too small to start the program) names what the
 * client sent. Undefined for a limit Piston has no field for (none a Piston request sets: its
 * output limit is the server's). */
export const pistonLimitField: LimitFieldName = (stage, limit) => {
  const constraint = (Object.keys(CONSTRAINTS) as Constraint[]).find((name) => CONSTRAINTS[name] === limit);
  return constraint === undefined ? undefined : `${stage === 'limits' ? 'run' : 'compile'}_${constraint}`;
};

/** The runtime variant that runs a language as Piston runs it, where that differs from the
 * runtime's own stages (Java's: the JDK's source launcher, Piston's java package's `run`, with no
 * compile): a runtime file says it by naming a variant `piston` (images/README.md, "Variants"). */
export const PISTON_VARIANT = 'piston';

/** The lists the server's maxima count that a Piston request has: its files and its arguments (one
 * named `args[0]`, as pistonArgs names one with a NUL). */
const PISTON_LISTS: Partial<Record<CountedList, { field: string; item?: (index: number) => string }>> = {
  files: { field: 'files' },
  args: { field: 'args', item: (index) => `args[${index}]` },
};

/** Piston's fields in admissionProblem's refusals (`args: 129 arguments; at most 128`). */
export const pistonFields: FrontFields = { limit: pistonLimitField, list: (list) => PISTON_LISTS[list] };

export interface PistonExecution {
  runtime: Runtime;
  request: JobRequest;
}

type Body = Record<string, unknown>;

/** As /v1's version field. A SemVer range is parsed in time that grows faster than its length:
 * a review's 4 MB "1 1 1 ..." held the event loop for 17 s. */
const MAX_VERSION_CHARS = 64;

export function translatePistonExecute(rawBody: unknown, runtimes: Runtime[]): PistonExecution {
  const body: Body = rawBody !== null && typeof rawBody === 'object' && !Array.isArray(rawBody) ? (rawBody as Body) : {};
  const { language, version, files } = body;
  if (!language || typeof language !== 'string') throw new PistonRequestError('language is required as a string');
  if (!version || typeof version !== 'string') throw new PistonRequestError('version is required as a string');
  if (version.length > MAX_VERSION_CHARS) throw new PistonRequestError(`version is longer than ${MAX_VERSION_CHARS} characters`);
  if (!files || !Array.isArray(files)) throw new PistonRequestError('files is required as an array');
  files.forEach((file: unknown, i) => {
    if (typeof (file as Body | null)?.content !== 'string') {
      throw new PistonRequestError(`files[${i}].content is required as a string`);
    }
  });
  const runtime = findPistonRuntime(runtimes, language, version);
  // The language as sent, of any length (the version is at most 64 characters): shortened as a name is.
  if (runtime === undefined) throw new PistonRequestError(`${shownUnits(language)}-${version} runtime is unknown`);
  // As v2.js checks the encodings sent: none, or utf8. An unknown one ("text") is read as utf8 below,
  // as job.js reads it, but is not one here.
  if (!files.some((file: Body) => !file.encoding || file.encoding === 'utf8')) {
    throw new PistonRequestError('files must include at least one utf8 encoded file');
  }
  const decoded = files.map((file: Body, i) => {
    const encoding: FileEncoding = FILE_ENCODINGS.includes(file.encoding as FileEncoding)
      ? (file.encoding as FileEncoding)
      : 'utf8';
    return { index: i, name: file.name, encoding, content: file.content as string };
  });

  const limits: Partial<Limits> = {};
  const compileLimits: Partial<Limits> = {};
  for (const constraint of Object.keys(CONSTRAINTS) as Constraint[]) {
    for (const stage of ['compile', 'run'] as Stage[]) {
      const value = constraintValue(body, stage, constraint, runtime);
      if (value !== undefined) (stage === 'run' ? limits : compileLimits)[CONSTRAINTS[constraint]] = value;
    }
  }

  const request: JobRequest = {
    runtimeId: runtime.id,
    files: orderedFiles(decoded, runtime),
    stdinBase64: Buffer.from(pistonStdin(body.stdin)).toString('base64'),
    args: pistonArgs(body.args),
    limits,
  };
  if (Object.keys(compileLimits).length > 0) request.compileLimits = compileLimits;
  if (variantOf(runtime, PISTON_VARIANT) !== undefined) request.variant = PISTON_VARIANT;
  return { runtime, request };
}

/** One `<stage>_<constraint>` field, checked as Piston does against the runtime's maximum. */
function constraintValue(body: Body, stage: Stage, constraint: Constraint, runtime: Runtime): number | undefined {
  const name = `${stage}_${constraint}`;
  const value = body[name];
  if (!value) return undefined; // Piston skips absent, null and 0 alike
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new PistonRequestError(`If specified, ${name} must be a number`);
  }
  // -1 is Piston's documented "no limit" for memory (piston-client sends it by default): our
  // runtimes always have a limit, so it means "the runtime's default".
  if (constraint === 'memory_limit' && value === -1) return undefined;
  if (constraint === 'memory_limit' && !Number.isInteger(value)) throw new PistonRequestError(`${name} must be a whole number of bytes`);
  const configured = stageMaxima(runtime, stage)[CONSTRAINTS[constraint]];
  if (value > configured) throw new PistonRequestError(`${name} cannot exceed the configured limit of ${configured}`);
  if (value < 0) throw new PistonRequestError(`${name} must be non-negative`);
  return value;
}

interface DecodedFile {
  index: number;
  name: unknown;
  encoding: FileEncoding;
  content: string;
}

/** Piston compiles and runs only the utf8 files and runs the first of them: that file is our
 * entry point, so it goes first. Unnamed files get Piston's `file<i>.code`, except the entry point,
 * which gets the runtime's source file name so that compilers recognise its language. */
function orderedFiles(files: DecodedFile[], runtime: Runtime): JobRequest['files'] {
  const entry = files.find((file) => file.encoding === 'utf8')!;
  const ordered = [entry, ...files.filter((file) => file !== entry)];
  const seen = new Set<string>();
  return ordered.map((file) => {
    if (file.name !== undefined && file.name !== null && typeof file.name !== 'string') {
      throw new PistonRequestError(`files[${file.index}].name must be a string`);
    }
    const name = file.name || (file === entry ? runtime.sourceFile : `file${file.index}.code`);
    if (hasLoneSurrogate(name)) {
      throw new PistonRequestError(`files[${file.index}].name "${shownFileName(name)}" is not valid Unicode (it holds a lone surrogate, which would be written as U+FFFD)`);
    }
    if (!isSafeRelativePath(name)) {
      throw new PistonRequestError(`files[${file.index}].name "${shownFileName(name)}" must be a relative path inside the work directory, of parts of at most ${NAME_MAX_BYTES} bytes and ${FILE_NAME_MAX_BYTES} bytes in all`);
    }
    if (seen.has(name)) throw new PistonRequestError(`files[${file.index}].name "${shownFileName(name)}" is used by another file`);
    seen.add(name);
    return { name, contentBase64: Buffer.from(file.content, file.encoding).toString('base64') };
  });
}

/** Piston adds a trailing newline to stdin when it has none (job.js), even to empty stdin. */
function pistonStdin(stdin: unknown): string {
  if (stdin !== undefined && stdin !== null && typeof stdin !== 'string') {
    throw new PistonRequestError('stdin must be a string');
  }
  const text = stdin ?? '';
  return text.endsWith('\n') ? text : `${text}\n`;
}

function pistonArgs(args: unknown): string[] {
  if (args === undefined || args === null) return [];
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string')) {
    throw new PistonRequestError('args must be an array of strings');
  }
  // A program's arguments end at their first NUL (execve): refused rather than cut short.
  const withNul = args.findIndex((arg) => arg.includes('\0'));
  if (withNul >= 0) throw new PistonRequestError(`args[${withNul}] must not contain NUL characters`);
  return args;
}
