// Job-level verdicts from stage verdicts (docs/theory-of-operation.md, "Verdicts").
import os from 'node:os';
import type { RunResult, Verdict } from '../sandbox/types.js';
import type { ExecuteResult, JobVerdict, StageResult } from './types.js';

/** A compile that did not end `ok` is the job's `compile_error`, unless the sandbox failed
 * (`internal_error`) or the job was cancelled: those are not the submission's fault. */
export function verdictAfterCompile(compileVerdict: Verdict): JobVerdict | undefined {
  if (compileVerdict === 'ok') return undefined;
  if (compileVerdict === 'internal_error' || compileVerdict === 'cancelled') return compileVerdict;
  return 'compile_error';
}

/** Whether a cancel (the job's signal) cut the job short: the job's verdict or any stage's is
 * `cancelled`. Not the job's verdict alone: with tests, a cancel of the last one leaves the job
 * the verdict of an earlier test that failed. A job whose stages had all ended by themselves
 * when the signal came has its result. */
export function cutShortByCancel(result: ExecuteResult): boolean {
  if (result.verdict === 'cancelled') return true;
  return findInStages(result, cancelledStage) !== undefined;
}

/** The stage if a cancel ended it (findInStages's pick, made once). */
const cancelledStage = (stage: StageResult): StageResult | undefined => (stage.verdict === 'cancelled' ? stage : undefined);

/** What `pick` gives for the first of a result's stages it gives something for (the program's
 * compile, the interactor's, the checker's, the run, then each test and its interactor's and
 * checker's runs, in that order); undefined when it gives nothing for any. The stages are looked at
 * where they are, no array made of them: every one-shot job's result is walked (the executor's
 * look for a descriptor shortage), and almost every walk finds nothing. */
export function findInStages<T extends {}>(result: ExecuteResult, pick: (stage: StageResult) => T | undefined): T | undefined {
  let found = pickFrom(result.compile, pick) ?? pickFrom(result.interactorCompile, pick) ?? pickFrom(result.checkerCompile, pick) ?? pickFrom(result.run, pick);
  const { tests } = result;
  for (let i = 0; found === undefined && tests !== undefined && i < tests.length; i++) {
    const test = tests[i]!;
    found = pick(test) ?? pickFrom(test.interactor, pick) ?? pickFrom(test.checker, pick);
  }
  return found;
}

function pickFrom<T extends {}>(stage: StageResult | undefined, pick: (stage: StageResult) => T | undefined): T | undefined {
  return stage === undefined ? undefined : pick(stage);
}

/** With tests: the first test's non-`ok` verdict, else `ok`. */
export function verdictOfRuns(verdicts: Verdict[]): JobVerdict {
  return verdicts.find((v) => v !== 'ok') ?? 'ok';
}

const { SIGPIPE } = os.constants.signals;

/** testlib's exit codes that reject the program's answer: wrong answer (1), presentation error
 * (2), "dirt" after the answer (4), unexpected end of file (8). */
const REJECTING_EXIT_CODES = new Set([1, 2, 4, 8]);

/** A judge program's judgement of a test by testlib's exit codes (docs/theory-of-operation.md,
 * "Judge programs"): 0 accepts, REJECTING_EXIT_CODES reject; anything else (3, testlib's
 * "fail": the interactor or the test is wrong; 7, points; a signal; a limit) judges nothing. */
export function testlibJudgement(judge: Pick<RunResult, 'verdict' | 'exitCode'>): boolean | null {
  if (judge.verdict === 'ok') return true;
  if (judge.verdict === 'runtime_error' && judge.exitCode !== null && REJECTING_EXIT_CODES.has(judge.exitCode)) return false;
  return null;
}

/** The verdict of a test with a judge program (an interactor's run beside the program, or a
 * checker's after it): the program's, except that
 * - a program killed by SIGPIPE wrote after the interactor had ended (its stdout's only reader),
 *   which ended the test: not the program's failure, so the verdict is `ok`, and `passed` says
 *   how the interactor judged it (null: it judged nothing, its own failure);
 * - a judge program's run that failed through no fault of the submission (the sandbox failed,
 *   the job was cancelled) makes the test's verdict that. */
export function verdictOfJudgedTest(program: Pick<RunResult, 'verdict' | 'signal'>, judge: Pick<RunResult, 'verdict' | 'exitCode'>): Verdict {
  if (judge.verdict === 'internal_error' || judge.verdict === 'cancelled') return judge.verdict;
  if (program.verdict === 'signaled' && program.signal === SIGPIPE) return 'ok';
  return program.verdict;
}

/** A test that failed, for stopOnFailure: its run did not end ok (internal_error too: the tests
 * after it would not be judged on the submission alone either), or its output (or its judge
 * program) said wrong. A test with nothing to judge it by (passed null) has not failed. */
export function testFailed(test: { verdict: string; passed: boolean | null }): boolean {
  return test.verdict !== 'ok' || test.passed === false;
}
