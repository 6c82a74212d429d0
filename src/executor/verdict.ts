// Job-level verdicts from stage verdicts (docs/theory-of-operation.md, "Verdicts").
import type { Verdict } from '../sandbox/types.js';
import type { JobVerdict } from './types.js';

/** A compile that did not end `ok` is the job's `compile_error`, unless the sandbox failed
 * (`internal_error`) or the job was cancelled: those are not the submission's fault. */
export function verdictAfterCompile(compileVerdict: Verdict): JobVerdict | undefined {
  if (compileVerdict === 'ok') return undefined;
  if (compileVerdict === 'internal_error' || compileVerdict === 'cancelled') return compileVerdict;
  return 'compile_error';
}

/** With tests: the first test's non-`ok` verdict, else `ok`. */
export function verdictOfRuns(verdicts: Verdict[]): JobVerdict {
  return verdicts.find((v) => v !== 'ok') ?? 'ok';
}
