// A JobRecord as the /v1 API shows it: outputs decoded (or left base64 on request), the main
// stage's outcome lifted to the top, and job-level metrics added up from the stages.
import type { JobRecord, JobResult, StoredStage } from '../jobs/model.js';
import type { JobView, ResultView, StageView } from './schemas.js';

export type OutputEncoding = 'utf8' | 'base64';

function decode(base64: string, encoding: OutputEncoding): string {
  return encoding === 'base64' ? base64 : Buffer.from(base64, 'base64').toString('utf8');
}

function presentStage(stage: StoredStage, encoding: OutputEncoding): StageView {
  const view: StageView = {
    verdict: stage.verdict,
    exitCode: stage.exitCode,
    signal: stage.signal,
    signalName: stage.signalName,
    stdout: decode(stage.stdoutBase64, encoding),
    stderr: decode(stage.stderrBase64, encoding),
    stdoutTruncated: stage.stdoutTruncated,
    stderrTruncated: stage.stderrTruncated,
    cpuTimeMs: stage.cpuTimeMs,
    wallTimeMs: stage.wallTimeMs,
    peakMemoryBytes: stage.peakMemoryBytes,
  };
  if (stage.passed !== undefined) view.passed = stage.passed;
  if (stage.error) view.error = stage.error;
  if (stage.cached) view.cached = true;
  if (stage.outputFiles) {
    view.outputFiles = stage.outputFiles.map(({ contentBase64, ...file }) => ({
      ...file,
      content: contentBase64 === null ? null : decode(contentBase64, encoding),
    }));
  }
  if (stage.interactor) view.interactor = presentStage(stage.interactor, encoding);
  if (stage.checker) view.checker = presentStage(stage.checker, encoding);
  return view;
}

/** The stage that decided the job: the run; else the first test that was not ok (or the last
 * test); else the compile that failed (a compile error ran nothing): a judge program's, or the
 * program's. */
function mainStage(result: JobResult): StoredStage | undefined {
  if (result.run) return result.run;
  if (result.tests && result.tests.length > 0) {
    return result.tests.find((test) => test.verdict !== 'ok') ?? result.tests[result.tests.length - 1];
  }
  if (result.failedCompile) return result[result.failedCompile];
  return result.compile;
}

export function presentResult(result: JobResult, encoding: OutputEncoding): ResultView {
  // The program's own stages: a judge program's are not the submission's time or memory.
  const stages = [result.compile, result.run, ...(result.tests ?? [])].filter((stage): stage is StoredStage => !!stage);
  const main = mainStage(result);
  const view: ResultView = {
    verdict: result.verdict,
    runtime: result.runtime,
    exitCode: main?.exitCode ?? null,
    signal: main?.signal ?? null,
    signalName: main?.signalName ?? null,
    stdout: main ? decode(main.stdoutBase64, encoding) : '',
    stderr: main ? decode(main.stderrBase64, encoding) : '',
    stdoutTruncated: main?.stdoutTruncated ?? false,
    stderrTruncated: main?.stderrTruncated ?? false,
    metrics: {
      cpuTimeMs: stages.reduce((sum, stage) => sum + stage.cpuTimeMs, 0),
      wallTimeMs: stages.reduce((sum, stage) => sum + stage.wallTimeMs, 0),
      peakMemoryBytes: stages.reduce((peak, stage) => Math.max(peak, stage.peakMemoryBytes), 0),
      queueWaitMs: result.queueWaitMs,
    },
  };
  if (result.compile) view.compile = presentStage(result.compile, encoding);
  if (result.interactorCompile) view.interactorCompile = presentStage(result.interactorCompile, encoding);
  if (result.checkerCompile) view.checkerCompile = presentStage(result.checkerCompile, encoding);
  if (result.failedCompile) view.failedCompile = result.failedCompile;
  if (result.run) view.run = presentStage(result.run, encoding);
  if (result.tests) view.tests = result.tests.map((test) => presentStage(test, encoding));
  if (result.skippedTests !== undefined) view.skippedTests = result.skippedTests;
  return view;
}

export function presentJob(record: JobRecord, encoding: OutputEncoding = 'utf8'): JobView {
  const view: JobView = { id: record.id, status: record.status, createdAt: record.createdAt };
  if (record.startedAt) view.startedAt = record.startedAt;
  if (record.finishedAt) view.finishedAt = record.finishedAt;
  if (record.attempts !== undefined) view.attempts = record.attempts;
  if (record.result) view.result = presentResult(record.result, encoding);
  if (record.failure) view.failure = record.failure;
  return view;
}
