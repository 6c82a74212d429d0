// One submission, start to end: a fresh pool slot per stage (kept per image and stage, see
// slot-keys.ts), the files written into its work dir, one compile (when the runtime has one),
// then one run, or one run per test, each in a fresh root holding a copy of the compile's work
// dir. Slots are released as soon as their stage ends, so their teardown overlaps the next stage.
// A job with a judge program (docs/theory-of-operation.md, "Judge programs") also compiles it
// once: an interactor then runs beside the program in every test, the two connected by pipes; a
// checker runs after each test's run, on its output. A judge program's compile that ended ok is
// kept for the worker's later jobs that send the same one (compile-cache.ts). A live job's one run
// streams (runLive): its stdin from its client as it runs, its output to it as it is written, in a
// container made with the pipes on a `connected` root.
import type { Runtime } from '../images/types.js';
import type { Pool, PoolSlot, PoolStats } from '../pool/index.js';
import { isUidShortage, PoolError, SANDBOX_GID } from '../pool/index.js';
import type { Limits, SandboxCgroups } from '../sandbox/types.js';
import { compileArgv, runArgv, stageEnv } from './argv.js';
import type { CompileCache, CompileCacheStats, TurnOutcome } from './compile-cache.js';
import { checkJudgeProgram, checkSubmission, comparisonProblem, JUDGE_FILES, judgeArgs, judgedJobProblem, liveJobProblem, outputAboveMaximum, terminalSizeProblem, type CheckedSubmission, type JudgeRole } from './check.js';
import { testOutputPassed } from './compare.js';
import type { StageRunner, StageSpec } from './engine.js';
import { descriptorShortage, ExecutorError } from './errors.js';
import { CompiledFilesError, copyCompiledWorkDir, outputFileMaxBytes, readOutputFiles, writeSourceFiles, writeTestFiles } from './files.js';
import { slotKey } from './slot-keys.js';
import type { ExecuteRequest, ExecuteResult, JudgeCompileStage, JudgeProgramRequest, LiveIo, LiveStageName, SourceFile, StageResult, TestCase, TestResult } from './types.js';
import { findInStages, testFailed, testlibJudgement, verdictAfterCompile, verdictOfJudgedTest, verdictOfRuns } from './verdict.js';

/** The result's field of a compile: the program's or its judge program's. */
type CompileStage = 'compile' | JudgeCompileStage;

/** A job's judge program (an interactor or a checker), checked. */
interface CheckedJudge {
  role: JudgeRole;
  runtime: Runtime;
  checked: CheckedSubmission;
  request: JudgeProgramRequest;
  compileStage: JudgeCompileStage;
}

/** A judged test's run with its verdict (verdictOfJudgedTest); where the verdict is the judge's
 * (its sandbox failed), with the judge's error, as a stage with verdict internal_error has. */
function judgedRun(run: StageResult, judged: StageResult): StageResult {
  const verdict = verdictOfJudgedTest(run, judged);
  if (verdict === 'internal_error' && run.verdict !== 'internal_error' && judged.error) return { ...run, verdict, error: judged.error };
  return { ...run, verdict };
}

/** A stage's failure for want of a descriptor (descriptorShortage), if it failed so. A function
 * of the module, not one made for each job's walk of its stages. */
const stageDescriptorShortage = (stage: StageResult): ExecutorError | undefined => (stage.error ? descriptorShortage(stage.error) : undefined);

/** A live run's environment on a terminal, over its runtime's: the terminal type that the
 * playgrounds' terminal emulators (xterm.js and the like) speak. */
const TERMINAL_ENV = { TERM: 'xterm-256color' };

/** A finished stage to a live job's client: its output (a compile's, which was not streamed), then
 * how it ended. */
function tellFinishedStage(live: LiveIo, stage: LiveStageName, result: StageResult): void {
  if (result.stdout.length > 0) live.output(stage, 'stdout', result.stdout);
  if (result.stderr.length > 0) live.output(stage, 'stderr', result.stderr);
  live.exit(stage, result);
}

/** A compile's work dir, which a job's runs copy: its slot's, or a kept one's (a CachedCompile is
 * one). release() gives it back once no run needs it. */
interface CompiledTree {
  dir: string;
  release(): void;
}

/** The owner of a slot's files: its own uid (src/pool/uid-leases.ts), the sandbox's group. */
const ownerOf = (slot: PoolSlot<unknown>) => ({ uid: slot.root.uid, gid: SANDBOX_GID });

export interface Executor {
  execute(request: ExecuteRequest): Promise<ExecuteResult>;
  /** Refuses new jobs at once, waits for the jobs in flight to end (abort their signals to end
   * them sooner), then releases the pool. */
  close(): Promise<void>;
  stats(): PoolStats;
  /** The kept judge compiles' figures; undefined where none are kept. */
  judgeCompileStats(): CompileCacheStats | undefined;
  /** The sandbox's cgroups (version, parents), for the owner's start-up log. */
  readonly cgroups?: SandboxCgroups;
  /** Every runtime variant this executor runs (its runtime files' `variants`), which a worker
   * advertises so that jobs naming one reach only workers that have it (variantJobField). */
  variants(): { runtimeId: string; variant: string }[];
  /** Settles (never rejects) when this executor can run no more jobs: its pool can make no more
   * slots (Pool.lost). Jobs that need a slot from then on fail with ExecutorError `unavailable`;
   * stages already running end as they would have (the worker stops them: QueueWorker.stoppedByItself). */
  readonly lost: Promise<Error>;
  /** Set once `lost` has happened (read synchronously: the moment a take would be refused). */
  readonly unusable: Error | undefined;
}

export interface SubmissionExecutorOptions {
  onClose?: () => Promise<void>;
  /** StageSpec.backgroundAfterCpuMs of every stage. */
  backgroundAfterCpuMs?: number;
  cgroups?: SandboxCgroups;
  /** Most output one job may store (CheckedSubmission.mostOutputBytes); unbounded when absent. The
   * API refuses such jobs before queueing; this holds for jobs queued by anything else. */
  maxJobOutputBytes?: number;
  /** Keeps judge programs' compiles for later jobs of this worker (CompileCache); absent: every
   * job compiles its judge program. */
  judgeCompiles?: CompileCache;
}

export class SubmissionExecutor<C> implements Executor {
  private readonly runtimes: Map<string, Runtime>;
  private closing: Promise<void> | undefined;
  /** Jobs between execute() and their result: the pool may not close under them (their slots'
   * mounts and cgroups would stay behind). */
  private readonly inFlight = new Set<Promise<ExecuteResult>>();

  private readonly onClose: () => Promise<void>;
  private readonly backgroundAfterCpuMs: number;
  private readonly maxJobOutputBytes: number;
  private readonly judgeCompiles: CompileCache | undefined;
  readonly cgroups?: SandboxCgroups;

  constructor(
    runtimes: Runtime[],
    private readonly pool: Pool<C>,
    private readonly runner: StageRunner<C>,
    options: SubmissionExecutorOptions = {},
  ) {
    this.runtimes = new Map(runtimes.map((r) => [r.id, r]));
    this.onClose = options.onClose ?? (async () => undefined);
    this.backgroundAfterCpuMs = options.backgroundAfterCpuMs ?? 0;
    this.maxJobOutputBytes = options.maxJobOutputBytes ?? Number.POSITIVE_INFINITY;
    this.judgeCompiles = options.judgeCompiles;
    if (options.cgroups) this.cgroups = options.cgroups;
  }

  async execute(request: ExecuteRequest): Promise<ExecuteResult> {
    if (this.closing) throw new ExecutorError('closed', 'executor is closed');
    const execution = this.executeOnce(request);
    this.inFlight.add(execution);
    try {
      const result = await execution;
      // A one-shot run's sandbox failed at a setup step for want of a descriptor: the host's
      // shortage, as when a slot's could not be prepared (below), not the job's `internal_error`.
      // Not a live job's: its output went to its client as it ran. Every stage's, whatever the
      // job's verdict; only a stage with an error is looked at (this runs for every job, and
      // findInStages makes nothing on the way).
      if (!request.live) {
        const shortage = findInStages(result, stageDescriptorShortage);
        if (shortage) throw shortage;
      }
      return result;
    } catch (err) {
      // The pool's own failure, not the job's: a take refused, or a slot whose preparation the
      // agent's death cut short.
      const unusable = this.pool.unusable;
      if (unusable && err instanceof PoolError) throw new ExecutorError('unavailable', unusable.message);
      // Said as it is: the worker tells its submitter an ExecutorError's message, and a PoolError's
      // op and code alone ("uid failed (EAGAIN)"), which would not say what ran out.
      if (isUidShortage(err)) throw new ExecutorError('no_sandbox_uid', `the job's sandbox could not be made: ${err.message}`);
      throw descriptorShortage(err) ?? err;
    } finally {
      this.inFlight.delete(execution);
    }
  }

  get lost(): Promise<Error> {
    return this.pool.lost;
  }

  get unusable(): Error | undefined {
    return this.pool.unusable;
  }

  private async executeOnce(request: ExecuteRequest): Promise<ExecuteResult> {
    const named = this.runtimes.get(request.runtimeId);
    if (!named) throw new ExecutorError('unknown_runtime', `unknown runtime ${JSON.stringify(request.runtimeId)}`);
    const args = request.args ?? [];
    const compileArgs = request.compileArgs ?? [];
    const checked = checkSubmission(named, {
      fileNames: Array.isArray(request.files) ? request.files.map((f) => f.name) : [],
      args,
      compileArgs,
      compileEntryOnly: request.compileEntryOnly === true,
      outputFiles: request.outputFiles ?? [],
      limits: request.limits,
      compileLimits: request.compileLimits,
      runs: Array.isArray(request.tests) ? request.tests.length : 1,
      ...(request.variant !== undefined ? { variant: request.variant } : {}),
    });
    // Its variant's stages where the job names one (an unknown one was refused above).
    const { runtime } = checked;
    const judge = this.checkedJudge(request, checked.runLimits.wallTimeMs);
    const comparison = comparisonProblem({ comparison: request.comparison, tests: request.tests, judged: judge !== undefined });
    if (comparison) throw new ExecutorError('bad_request', comparison.message);
    const live = request.live;
    const liveProblem = live && (liveJobProblem(request) ?? (live.terminal && terminalSizeProblem(live.terminal)));
    if (liveProblem) throw new ExecutorError('bad_request', liveProblem);
    const outputProblem = outputAboveMaximum(checked, this.maxJobOutputBytes, judge ? [{ role: judge.role, checked: judge.checked }] : []);
    if (outputProblem !== undefined) throw new ExecutorError('bad_request', outputProblem);
    const { fileNames, compileSources, runLimits, compileLimits, outputFiles } = checked;
    const result: ExecuteResult = {
      verdict: 'ok',
      runtime: { id: runtime.id, language: runtime.language, version: runtime.version },
    };
    const signal = request.signal;
    /** A stage of the job's runtime (or of its judge program's: `env`): its env's limit
     * placeholders expanded with the stage's own limits, as its argv's are. */
    const stage = (argv: string[], stdin: Uint8Array | string, limits = runLimits, env = runtime.env): StageSpec => ({
      argv,
      env: stageEnv(env, limits),
      stdin,
      limits,
      signal,
      backgroundAfterCpuMs: this.backgroundAfterCpuMs,
    });

    let compiled: CompiledTree | undefined;
    let judgeCompiled: CompiledTree | undefined;
    /** Whose compiled work dir was copied last: a CompiledFilesError is that compile's fault. */
    let copyingFrom = 'compile' as CompileStage;
    try {
      if (signal?.aborted) return { ...result, verdict: 'cancelled' };
      if (runtime.compile && compileLimits) {
        const slot = await this.pool.take(slotKey(runtime.image, 'compile'));
        compiled = this.slotTree(slot);
        writeSourceFiles(slot.root.workDirHostPath, request.files, ownerOf(slot));
        live?.stage('compile');
        const compile = await this.runner.run(slot, stage(compileArgv(runtime.compile, compileSources, compileArgs, compileLimits), '', compileLimits));
        result.compile = compile;
        if (live) tellFinishedStage(live, 'compile', compile);
        const failed = verdictAfterCompile(compile.verdict);
        if (failed) return { ...result, verdict: failed };
      }
      if (judge?.runtime.compile && judge.checked.compileLimits) {
        const compile = await this.compileJudge(judge, stage, signal, (tree) => (judgeCompiled = tree));
        if (!compile) return { ...result, verdict: 'cancelled' };
        result[judge.compileStage] = compile;
        const failed = verdictAfterCompile(compile.verdict);
        if (failed) return { ...result, verdict: failed, failedCompile: judge.compileStage };
      }

      const runArgs = runArgv(runtime.run.argv, fileNames, args, runLimits);
      const runStage = (stdin: Uint8Array | string): StageSpec =>
        request.stderrToStdout === true ? { ...stage(runArgs, stdin), stderrToStdout: true } : stage(runArgs, stdin);
      /** A run's work dir: a copy of its compile's (`from`), or the submitted files where there
       * was no compile. `last`: no run after this one needs the compile's work dir, which is given
       * back now (a slot's container, root and cgroup go back to the pool, to be torn down and
       * replaced) rather than after the run. Answers the compiled tree while it is still held. */
      const fillWorkDir = async (
        slot: PoolSlot<C>,
        from: CompiledTree | undefined,
        files: SourceFile[],
        last: boolean,
        compileStage: CompileStage = 'compile',
      ): Promise<CompiledTree | undefined> => {
        if (!from) {
          writeSourceFiles(slot.root.workDirHostPath, files, ownerOf(slot));
          return undefined;
        }
        copyingFrom = compileStage;
        await copyCompiledWorkDir(from.dir, slot.root.workDirHostPath, ownerOf(slot));
        if (!last) return from;
        from.release();
        return undefined;
      };
      /** A live job's run: its container made with pipes (on a `connected` root), the client's
       * stdin connected once it runs, its output told as it comes. */
      const runLive = async (slot: PoolSlot<C>, firstStdin: Uint8Array | string, io: LiveIo): Promise<StageResult> => {
        io.stage('run');
        const runSpec = runStage('');
        // A terminal's programs read TERM to know what it understands (colours, cursor moves).
        if (io.terminal) runSpec.env = { ...runSpec.env, ...TERMINAL_ENV };
        const streaming = this.runner.runStreaming(slot, runSpec, { onOutput: (stream, chunk) => io.output('run', stream, chunk) }, io.terminal);
        if (firstStdin.length > 0) streaming.write(typeof firstStdin === 'string' ? Buffer.from(firstStdin) : firstStdin);
        io.connectStdin(streaming);
        const run = await streaming.result;
        io.exit('run', run);
        return run;
      };
      const runOnce = async (stdin: Uint8Array | string, last: boolean): Promise<StageResult> => {
        const slot = await this.pool.take(slotKey(runtime.image, live ? 'connected' : 'run'));
        try {
          compiled = await fillWorkDir(slot, compiled, request.files, last);
          const run: StageResult = live ? await runLive(slot, stdin, live) : await this.runner.run(slot, runStage(stdin));
          // Before the slot goes back: its work dir goes with it.
          if (outputFiles.length > 0) run.outputFiles = readOutputFiles(slot.root.workDirHostPath, outputFiles, outputFileMaxBytes(runLimits));
          return run;
        } finally {
          this.pool.release(slot);
        }
      };

      /** A test's files in its judge program's work dir (JUDGE_FILES), in place of whatever its
       * compile left under those names. */
      const writeJudgeFiles = (slot: PoolSlot<C>, files: { name: string; content: Uint8Array | string }[]): void => {
        try {
          writeTestFiles(slot.root.workDirHostPath, Object.values(JUDGE_FILES), files, ownerOf(slot));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          // A compile that filled the work dir (its bytes or its files) left no room for them.
          if (!result[judge!.compileStage] || (code !== 'ENOSPC' && code !== 'EDQUOT')) throw err;
          copyingFrom = judge!.compileStage;
          throw new CompiledFilesError(`the test's files could not be written beside the compile's in the run's work dir (${code})`);
        }
      };
      const judgeStage = (hasAnswer: boolean): StageSpec => {
        const limits = judge!.checked.runLimits;
        return stage(runArgv(judge!.runtime.run.argv, judge!.checked.fileNames, judgeArgs(judge!.role, hasAnswer), limits), '', limits, judge!.runtime.env);
      };

      /** One test of an interactive job: the program and the interactor at once, connected. */
      const runInteractive = async (test: TestCase, last: boolean): Promise<TestResult> => {
        const taken = await Promise.allSettled([this.pool.take(slotKey(runtime.image, 'connected')), this.pool.take(slotKey(judge!.runtime.image, 'connected'))]);
        const held = taken.flatMap((t) => (t.status === 'fulfilled' ? [t.value] : []));
        const refused = taken.find((t): t is PromiseRejectedResult => t.status === 'rejected');
        if (refused) {
          for (const slot of held) this.pool.release(slot);
          throw refused.reason;
        }
        const [slot, judgeSlot] = held as [PoolSlot<C>, PoolSlot<C>];
        try {
          compiled = await fillWorkDir(slot, compiled, request.files, last);
          judgeCompiled = await fillWorkDir(judgeSlot, judgeCompiled, judge!.request.files, last, judge!.compileStage);
          const hasAnswer = test.expectedOutput !== undefined;
          writeJudgeFiles(judgeSlot, [
            { name: JUDGE_FILES.input, content: test.stdin },
            ...(hasAnswer ? [{ name: JUDGE_FILES.answer, content: test.expectedOutput! }] : []),
          ]);
          // The interactor ignores SIGPIPE: a program that ended early is its to judge (testlib
          // then reads end of file), not a signal that kills it mid-answer.
          const [run, judged] = await this.runner.runConnected(slot, stage(runArgs, ''), judgeSlot, { ...judgeStage(hasAnswer), ignoreSigpipe: true });
          const tested: TestResult = { ...judgedRun(run, judged), passed: testlibJudgement(judged), interactor: judged };
          if (outputFiles.length > 0) tested.outputFiles = readOutputFiles(slot.root.workDirHostPath, outputFiles, outputFileMaxBytes(runLimits));
          return tested;
        } finally {
          this.pool.release(judgeSlot);
          this.pool.release(slot);
        }
      };

      /** One test of a checked job: the program's run, then (when it ended ok) the checker on its
       * stdout. */
      const runChecked = async (test: TestCase, last: boolean): Promise<TestResult> => {
        const run = await runOnce(test.stdin, last);
        if (run.verdict !== 'ok') return { ...run, passed: null };
        const slot = await this.pool.take(slotKey(judge!.runtime.image, 'run'));
        try {
          judgeCompiled = await fillWorkDir(slot, judgeCompiled, judge!.request.files, last, judge!.compileStage);
          writeJudgeFiles(slot, [
            { name: JUDGE_FILES.input, content: test.stdin },
            { name: JUDGE_FILES.output, content: run.stdout },
            { name: JUDGE_FILES.answer, content: test.expectedOutput ?? '' },
          ]);
          const judged = await this.runner.run(slot, judgeStage(true));
          return { ...judgedRun(run, judged), passed: testlibJudgement(judged), checker: judged };
        } finally {
          this.pool.release(slot);
        }
      };

      if (!request.tests) {
        const run = await runOnce(request.stdin ?? '', true);
        return { ...result, run, verdict: run.verdict };
      }
      const tests: TestResult[] = [];
      let skippedTests = 0;
      for (const [index, test] of request.tests.entries()) {
        if (signal?.aborted) break;
        const last = index === request.tests.length - 1;
        if (judge) {
          tests.push(await (judge.role === 'interactor' ? runInteractive : runChecked)(test, last));
        } else {
          const run = await runOnce(test.stdin, last);
          // A run that did not end ok is not checked (as with a checker): its output may be whole
          // and right, but the test is failed by its verdict, and `passed` says nothing of it.
          const { expectedOutput, expectedOutputReading } = test;
          const checked = expectedOutput !== undefined && run.verdict === 'ok';
          tests.push({ ...run, passed: checked ? testOutputPassed(run, { expectedOutput, expectedOutputReading }, request.comparison) : null });
        }
        // A test ended by the job's cancel is not a failure: the loop ends at its next turn.
        if (request.stopOnFailure === true && !signal?.aborted && testFailed(tests[index]!)) {
          skippedTests = request.tests.length - index - 1;
          break;
        }
      }
      const verdict = tests.length + skippedTests < request.tests.length ? 'cancelled' : verdictOfRuns(tests.map((t) => t.verdict));
      return { ...result, tests, verdict, ...(skippedTests > 0 ? { skippedTests } : {}) };
    } catch (err) {
      const compile = result[copyingFrom];
      if (!(err instanceof CompiledFilesError) || !compile) throw err;
      // The compile (the program's or its judge program's) succeeded but left what no run can be
      // given: its fault, told where its messages go.
      const stderr = Buffer.concat([compile.stderr, Buffer.from(`cellblock: ${err.message}\n`)]);
      const failed: ExecuteResult = { ...result, [copyingFrom]: { ...compile, stderr }, verdict: 'compile_error' };
      if (copyingFrom !== 'compile') failed.failedCompile = copyingFrom;
      return failed;
    } finally {
      compiled?.release();
      judgeCompiled?.release();
    }
  }

  /** A slot's work dir as a compiled tree: released, the slot goes back to the pool. */
  private slotTree(slot: PoolSlot<C>): CompiledTree {
    return { dir: slot.root.workDirHostPath, release: () => this.pool.release(slot) };
  }

  /** The job's judge program's compile: the same compile kept from an earlier job (its result with
   * `cached`), or run now in a compile slot and kept for later jobs when it ends ok. `hold` is given
   * the compiled tree as soon as there is one (and again when it becomes the kept copy), so that
   * the job releases it however it ends. Undefined when the job was cancelled before it ran. */
  private async compileJudge(
    judge: CheckedJudge,
    stage: (argv: string[], stdin: string, limits: Limits, env: Record<string, string>) => StageSpec,
    signal: AbortSignal | undefined,
    hold: (tree: CompiledTree) => void,
  ): Promise<StageResult | undefined> {
    const limits = judge.checked.compileLimits!;
    const argv = compileArgv(judge.runtime.compile!, judge.checked.compileSources, judge.request.compileArgs ?? [], limits);
    const cache = this.judgeCompiles;
    const key = cache?.key({ runtime: judge.runtime, argv, limits, files: judge.request.files });
    const lookup = key === undefined ? undefined : await cache!.take(key, signal);
    if (lookup?.kept) {
      hold(lookup.kept);
      return { ...lookup.kept.result, cached: true };
    }
    // Other jobs compiling the same wait until this turn ends: given up unless said otherwise.
    let outcome: TurnOutcome = 'given_up';
    try {
      if (signal?.aborted) return undefined;
      const slot = await this.pool.take(slotKey(judge.runtime.image, 'compile'));
      const tree = this.slotTree(slot);
      hold(tree);
      writeSourceFiles(slot.root.workDirHostPath, judge.request.files, ownerOf(slot));
      const compile = await this.runner.run(slot, stage(argv, '', limits, judge.runtime.env));
      if (verdictAfterCompile(compile.verdict)) {
        // The compiler's own error (its exit status): the next would fail alike. A limit hit
        // (a busy host), a signal, a cancel or the sandbox's failure: the next may not.
        if (compile.verdict === 'runtime_error') outcome = 'failed';
        return compile;
      }
      const keptNow = key === undefined ? undefined : await cache!.keep(key, slot.root.workDirHostPath, compile);
      // Not kept (too large, or the host's disk): the jobs waiting would not keep it either.
      outcome = keptNow ? 'kept' : 'failed';
      if (keptNow) {
        // The tests copy the kept work dir, and the compile's slot goes back now.
        tree.release();
        hold(keptNow);
      }
      return compile;
    } finally {
      lookup?.turn(outcome);
    }
  }

  /** The job's judge program (its interactor or its checker) with its runtime and checks
   * (checkJudgeProgram), undefined when it has none, or an ExecutorError. */
  private checkedJudge(request: ExecuteRequest, programWallTimeMs: number): CheckedJudge | undefined {
    const stdin = request.stdin ?? '';
    const problem = judgedJobProblem({
      tests: request.tests,
      stdinBytes: typeof stdin === 'string' ? Buffer.byteLength(stdin) : stdin.byteLength,
      stderrToStdout: request.stderrToStdout,
      interactor: request.interactor !== undefined,
      checker: request.checker !== undefined,
    });
    if (problem) throw new ExecutorError('bad_request', problem.message);
    const role: JudgeRole | undefined = request.interactor ? 'interactor' : request.checker ? 'checker' : undefined;
    if (role === undefined) return undefined;
    const judge = request[role]!;
    const runtime = this.runtimes.get(judge.runtimeId);
    if (!runtime) throw new ExecutorError('unknown_runtime', `unknown ${role} runtime ${JSON.stringify(judge.runtimeId)}`);
    const checked = checkJudgeProgram(role, runtime, judge, request.tests!.length, programWallTimeMs);
    return { role, runtime, checked, request: judge, compileStage: role === 'interactor' ? 'interactorCompile' : 'checkerCompile' };
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  judgeCompileStats(): CompileCacheStats | undefined {
    return this.judgeCompiles?.stats();
  }

  variants(): { runtimeId: string; variant: string }[] {
    return [...this.runtimes.values()].flatMap((runtime) => Object.keys(runtime.variants ?? {}).map((variant) => ({ runtimeId: runtime.id, variant })));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      // Its removals first: the pool's close removes the owner's dir that the cache's dir is in.
      try {
        try {
          await this.judgeCompiles?.close();
        } finally {
          // The pool's mounts and agent go even when the cache's close failed.
          await this.pool.close();
        }
      } finally {
        // The sandbox's cgroups and instance lock go even when the pool's close failed.
        await this.onClose();
      }
    })();
    return this.closing;
  }
}
