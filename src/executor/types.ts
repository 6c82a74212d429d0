// Contract of the executor: one submission (files, stdin, tests) against one runtime, compiled
// once and run once per test. It sits on the sandbox, the pool and the images; the queue worker
// calls it and knows nothing below it.
import type { Limits, RunResult, TerminalSize, Verdict } from '../sandbox/types.js';
import type { OutputFile } from './files.js';

export type { TerminalSize };

export interface SourceFile {
  /** Relative path inside the work dir; no "..", no absolute paths (validated by the API). */
  name: string;
  content: Uint8Array;
}

export interface TestCase {
  stdin: Uint8Array | string;
  /** When present, the run's stdout is compared (see theory of operation, "Output comparison"):
   * text as its UTF-8 bytes, or the bytes themselves (an expected output that is not UTF-8). */
  expectedOutput?: Uint8Array | string;
  /** `lossy-utf8`: the text expectedOutput was read from bytes as UTF-8, each invalid sequence
   * becoming U+FFFD, so that it no longer says which bytes they were. The `lines` comparison then
   * reads stdout the same way, so that the bytes it was read from match (ExpectedOutputReading). */
  expectedOutputReading?: ExpectedOutputReading;
}

/** How a text expected output was read from the bytes it stands for, where not as they are. */
export type ExpectedOutputReading = 'lossy-utf8';

/** How each test's stdout is compared with its expectedOutput (compare.ts). */
export interface Comparison {
  /** lines: the same bytes once trailing whitespace on each line (as Ruby's rstrip has it) and
   * trailing empty lines are ignored (Judge0's rule, the default); exact: the same bytes; tokens: the same whitespace-separated words. */
  mode: 'lines' | 'exact' | 'tokens';
  /** tokens only: two words that are both decimal numbers are equal within this, absolutely or
   * relative to the expected one. */
  floatTolerance?: number;
}

export interface ExecuteRequest {
  runtimeId: string;
  /** The runtime's variant to run it with (Runtime.variants: its stages in place of the
   * runtime's); absent: the runtime's own. One the runtime lacks is an ExecutorError
   * (`unknown_variant`). */
  variant?: string;
  /** The first file is the entry point. */
  files: SourceFile[];
  stdin?: Uint8Array | string;
  args?: string[];
  /** The compile's own arguments, where the runtime's compile argv has `{args}` (checkSubmission). */
  compileArgs?: string[];
  /** Run limits; absent fields take the runtime's defaults. Checked against maxima by the API. */
  limits?: Partial<Limits>;
  compileLimits?: Partial<Limits>;
  /** The compile's `{files}` (or `{entry}`) is the entry file alone, not every source among the files (Judge0's
   * compile commands name the source file only; its additional files may be sources that the
   * entry #includes). */
  compileEntryOnly?: boolean;
  /** Each run's stderr is written into its stdout, interleaved as the program wrote them
   * (StartSpec.stderrToStdout); not the compile's. */
  stderrToStdout?: boolean;
  /** Files the program writes in its work dir, returned with each run (StageResult.outputFiles),
   * each up to the run's outputBytes. Relative paths, as file names are. */
  outputFiles?: string[];
  /** When present, the program is run once per test (after one compile) instead of once. */
  tests?: TestCase[];
  /** Run the tests in order and none after the first that fails (testFailed: its run not ok, or its
   * passed false); the others are counted in ExecuteResult.skippedTests. */
  stopOnFailure?: boolean;
  /** How the tests' stdout is compared with their expectedOutput; absent: `lines`. Needs tests;
   * not with a judge program, which judges in its place (comparisonProblem). */
  comparison?: Comparison;
  /** An interactive problem's interactor: compiled once (where its runtime compiles), then run
   * beside the program in every test, each one's stdout the other's stdin. Needs `tests`; not
   * with `stdin` or `stderrToStdout` (docs/theory-of-operation.md, "Judge programs"). */
  interactor?: JudgeProgramRequest;
  /** A checker: compiled once (where its runtime compiles), then run after each test whose run
   * ended `ok`, on the program's stdout, its judgement the test's `passed` (in place of comparing
   * with `expectedOutput`, which it gets as its answer file). Needs `tests`; not with
   * `interactor`. */
  checker?: JudgeProgramRequest;
  /** A live job (docs/theory-of-operation.md, "Live runs"): its run's stdin and output are
   * streams, `stdin` only their first bytes. No tests, judge program or stderrToStdout
   * (liveJobProblem). */
  live?: LiveIo;
  signal?: AbortSignal;
}

/** A live job's stages, in order. */
export type LiveStageName = 'compile' | 'run';

/** A live job's two-way line to its client (the queue's live channel implements it). */
export interface LiveIo {
  /** The run's stdin, stdout and stderr are one terminal of this size (its output comes as
   * `stdout`, as a terminal writes it); absent: three pipes. */
  readonly terminal?: TerminalSize;
  /** A stage begins. */
  stage(stage: LiveStageName): void;
  /** A stage's output: the compile's when it has ended, the run's as the program writes it. */
  output(stage: LiveStageName, stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /** A stage ended (after all its output). */
  exit(stage: LiveStageName, result: StageResult): void;
  /** The run's stdin, once the program runs: the client's input goes there from now on (what it
   * sent earlier first), and its end of input ends it. */
  connectStdin(stdin: LiveStdin): void;
}

/** The running program's stdin (the engine's StreamingRun is one). */
export interface LiveStdin {
  write(data: Uint8Array): void;
  end(): void;
  /** The terminal's new size (the program gets SIGWINCH); nothing without a terminal. Throws
   * for a size outside 1-65535 (terminalSizeProblem says which first). */
  resize(size: TerminalSize): void;
}

/** A job's interactor or checker (judgeArgs). Its argv is its runtime's run argv, then the
 * test's input file, the output file and the answer file (an interactor's only when the test has
 * an expected output): testlib's `interactor <input> <output> [<answer>]` and
 * `checker <input> <output> <answer>` (JUDGE_FILES), all in its work dir. */
export interface JudgeProgramRequest {
  runtimeId: string;
  /** The first file is the entry point. */
  files: SourceFile[];
  compileArgs?: string[];
  /** Its runs' limits; absent fields take its runtime's defaults. */
  limits?: Partial<Limits>;
  compileLimits?: Partial<Limits>;
}

/** One sandboxed step (compile, run, or one test) as the executor reports it. */
export interface StageResult extends RunResult {
  /** A run's files asked for by ExecuteRequest.outputFiles, in that order. */
  outputFiles?: OutputFile[];
  /** A judge program's compile that this job did not run: the result of the same compile (its
   * files, arguments, limits, runtime and image), run by this worker for an earlier job, whose work
   * dir it kept (CompileCache); its metrics are that compile's. */
  cached?: true;
}

export interface TestResult extends StageResult {
  /** null when the test had no expected output. In a job with an interactor or a checker, its
   * judgement (testlibJudgement): true when it exited 0, false when it exited 1, 2, 4 or 8
   * (testlib's rejections), null when it ended otherwise (see `interactor`, `checker`) or, for a
   * checker, did not run (the program's run was not `ok`). */
  passed: boolean | null;
  /** An interactive job's interactor in this test (its stdout went to the program: empty). */
  interactor?: StageResult;
  /** A checked job's checker in this test, when the program's run was `ok`. */
  checker?: StageResult;
}

/** The result's field of a judge program's compile. */
export type JudgeCompileStage = 'interactorCompile' | 'checkerCompile';

/** Job-level verdict: the engine's verdicts plus `compile_error`. */
export type JobVerdict = Verdict | 'compile_error';

export interface ExecuteResult {
  verdict: JobVerdict;
  runtime: { id: string; language: string; version: string };
  compile?: StageResult;
  /** An interactive job's interactor compile, when its runtime compiles. */
  interactorCompile?: StageResult;
  /** A checked job's checker compile, when its runtime compiles. */
  checkerCompile?: StageResult;
  /** Set when a judge program's compile ended the job (its `compile_error`: its exit, or files no
   * test's work dir could hold, said in its stderr; or its `internal_error`, `cancelled`); absent
   * when the program's did. */
  failedCompile?: JudgeCompileStage;
  /** The single run, when the request had no tests (absent after a compile error). */
  run?: StageResult;
  /** The tests run, in order: all of them, unless the job was cancelled, or stopOnFailure stopped
   * it after the last of these. */
  tests?: TestResult[];
  /** With stopOnFailure: the tests after the one that failed, not run; absent when none. */
  skippedTests?: number;
}
