// What execute() refuses, checked without running anything. The worker's executor calls it before
// a job takes a slot; the API calls it before the job is queued, whichever front translated it, so
// that a job the API accepts is one a worker can run (the check is the same code in both places).
import type { Runtime } from '../images/types.js';
// From spec.ts, not the sandbox's index: the index loads the native addon, which an API-only host
// (that runs this check too) does not build.
import { checkLimits } from '../sandbox/spec.js';
import { SandboxSpecError, type Limits } from '../sandbox/types.js';
import { ExecutorError } from './errors.js';
import { checkedFileName } from './files.js';
import { effectiveLimits } from './limits.js';

export interface SubmissionShape {
  fileNames: string[];
  args: string[];
  limits?: Partial<Limits>;
  compileLimits?: Partial<Limits>;
}

export interface CheckedSubmission {
  /** Normalised, in the submitted order. */
  fileNames: string[];
  runLimits: Limits;
  /** Present when the runtime has a compile step. */
  compileLimits?: Limits;
}

export function checkSubmission(runtime: Runtime, submission: SubmissionShape): CheckedSubmission {
  if (!Array.isArray(submission.fileNames) || submission.fileNames.length === 0) {
    throw new ExecutorError('bad_request', 'a submission needs at least one file');
  }
  const fileNames = submission.fileNames.map((name) => checkedFileName(name));
  if (!Array.isArray(submission.args)) throw new ExecutorError('bad_request', 'args must be an array of strings');
  submission.args.forEach((arg, i) => {
    // The kernel's execve ends each argument at its first NUL: refused, never silently cut.
    if (typeof arg !== 'string' || arg.includes('\0')) {
      throw new ExecutorError('bad_request', `args[${i}] must be a string without NUL bytes`);
    }
  });
  const checked: CheckedSubmission = {
    fileNames,
    runLimits: sandboxLimits('limits', effectiveLimits(runtime.defaultLimits, runtime.maxLimits, submission.limits)),
  };
  if (runtime.compile) {
    checked.compileLimits = sandboxLimits(
      'compileLimits',
      effectiveLimits(runtime.defaultLimits, runtime.maxLimits, runtime.compile.limits, submission.compileLimits),
    );
  }
  return checked;
}

/** The engine's own check of a stage's limits (a byte or pid count must be whole). */
function sandboxLimits(what: string, limits: Limits): Limits {
  try {
    return checkLimits(limits);
  } catch (error) {
    if (!(error instanceof SandboxSpecError)) throw error;
    throw new ExecutorError('bad_request', `${what}.${error.field.replace(/^limits\./, '')} ${error.reason}`);
  }
}
