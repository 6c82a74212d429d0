// One submission, start to end: a fresh pool slot per stage (kept per image and stage, see
// slot-keys.ts), the files written into its work dir, one compile (when the runtime has one),
// then one run, or one run per test, each in a fresh root holding a copy of the compile's work
// dir. Slots are released as soon as their stage ends, so their teardown overlaps the next stage.
import type { Runtime } from '../images/types.js';
import type { Pool, PoolSlot, PoolStats } from '../pool/index.js';
import { SANDBOX_GID } from '../pool/index.js';
import type { SandboxCgroups } from '../sandbox/types.js';
import { compileArgv, runArgv } from './argv.js';
import { checkSubmission, outputAboveMaximum } from './check.js';
import { outputMatches } from './compare.js';
import type { StageRunner, StageSpec } from './engine.js';
import { ExecutorError } from './errors.js';
import { CompiledFilesError, copyCompiledWorkDir, readOutputFiles, writeSourceFiles } from './files.js';
import { slotKey } from './slot-keys.js';
import type { ExecuteRequest, ExecuteResult, StageResult, TestResult } from './types.js';
import { verdictAfterCompile, verdictOfRuns } from './verdict.js';

/** The owner of a slot's files: its own uid (src/pool/uid-leases.ts), the sandbox's group. */
const ownerOf = (slot: PoolSlot<unknown>) => ({ uid: slot.root.uid, gid: SANDBOX_GID });

export interface Executor {
  execute(request: ExecuteRequest): Promise<ExecuteResult>;
  /** Refuses new jobs at once, waits for the jobs in flight to end (abort their signals to end
   * them sooner), then releases the pool. */
  close(): Promise<void>;
  stats(): PoolStats;
  /** The sandbox's cgroups (version, parents), for the owner's start-up log. */
  readonly cgroups?: SandboxCgroups;
}

export interface SubmissionExecutorOptions {
  onClose?: () => Promise<void>;
  /** StageSpec.backgroundAfterCpuMs of every stage. */
  backgroundAfterCpuMs?: number;
  cgroups?: SandboxCgroups;
  /** Most output one job may store (CheckedSubmission.mostOutputBytes); unbounded when absent. The
   * API refuses such jobs before queueing; this holds for jobs queued by anything else. */
  maxJobOutputBytes?: number;
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
    if (options.cgroups) this.cgroups = options.cgroups;
  }

  async execute(request: ExecuteRequest): Promise<ExecuteResult> {
    if (this.closing) throw new ExecutorError('closed', 'executor is closed');
    const execution = this.executeOnce(request);
    this.inFlight.add(execution);
    try {
      return await execution;
    } finally {
      this.inFlight.delete(execution);
    }
  }

  private async executeOnce(request: ExecuteRequest): Promise<ExecuteResult> {
    const runtime = this.runtimes.get(request.runtimeId);
    if (!runtime) throw new ExecutorError('unknown_runtime', `unknown runtime ${JSON.stringify(request.runtimeId)}`);
    const args = request.args ?? [];
    const compileArgs = request.compileArgs ?? [];
    const checked = checkSubmission(runtime, {
      fileNames: Array.isArray(request.files) ? request.files.map((f) => f.name) : [],
      args,
      compileArgs,
      compileEntryOnly: request.compileEntryOnly === true,
      outputFiles: request.outputFiles ?? [],
      limits: request.limits,
      compileLimits: request.compileLimits,
      runs: Array.isArray(request.tests) ? request.tests.length : 1,
    });
    const outputProblem = outputAboveMaximum(checked, this.maxJobOutputBytes);
    if (outputProblem !== undefined) throw new ExecutorError('bad_request', outputProblem);
    const { fileNames, compileSources, runLimits, compileLimits, outputFiles } = checked;
    const result: ExecuteResult = {
      verdict: 'ok',
      runtime: { id: runtime.id, language: runtime.language, version: runtime.version },
    };
    const signal = request.signal;
    const stage = (argv: string[], stdin: Uint8Array | string, limits = runLimits): StageSpec => ({
      argv,
      env: runtime.env,
      stdin,
      limits,
      signal,
      backgroundAfterCpuMs: this.backgroundAfterCpuMs,
    });

    let compiled: PoolSlot<C> | undefined;
    try {
      if (signal?.aborted) return { ...result, verdict: 'cancelled' };
      if (runtime.compile && compileLimits) {
        compiled = await this.pool.take(slotKey(runtime.image, 'compile'));
        writeSourceFiles(compiled.root.workDirHostPath, request.files, ownerOf(compiled));
        const compile = await this.runner.run(compiled, stage(compileArgv(runtime.compile, compileSources, compileArgs), '', compileLimits));
        result.compile = compile;
        const failed = verdictAfterCompile(compile.verdict);
        if (failed) return { ...result, verdict: failed };
      }

      const runArgs = runArgv(runtime.run.argv, fileNames, args);
      const runStage = (stdin: Uint8Array | string): StageSpec =>
        request.stderrToStdout === true ? { ...stage(runArgs, stdin), stderrToStdout: true } : stage(runArgs, stdin);
      /** `last`: no run after this one needs the compile's work dir. */
      const runOnce = async (stdin: Uint8Array | string, last: boolean): Promise<StageResult> => {
        const slot = await this.pool.take(slotKey(runtime.image, 'run'));
        try {
          if (compiled) {
            await copyCompiledWorkDir(compiled.root.workDirHostPath, slot.root.workDirHostPath, ownerOf(slot));
            // Its container, root and cgroup are no use to the last run: they go back to the pool
            // now, to be torn down and replaced, rather than after the run.
            if (last) {
              this.pool.release(compiled);
              compiled = undefined;
            }
          } else {
            writeSourceFiles(slot.root.workDirHostPath, request.files, ownerOf(slot));
          }
          const run: StageResult = await this.runner.run(slot, runStage(stdin));
          // Before the slot goes back: its work dir goes with it.
          if (outputFiles.length > 0) run.outputFiles = readOutputFiles(slot.root.workDirHostPath, outputFiles, runLimits.outputBytes);
          return run;
        } finally {
          this.pool.release(slot);
        }
      };

      if (!request.tests) {
        const run = await runOnce(request.stdin ?? '', true);
        return { ...result, run, verdict: run.verdict };
      }
      const tests: TestResult[] = [];
      for (const [index, test] of request.tests.entries()) {
        if (signal?.aborted) break;
        const run = await runOnce(test.stdin, index === request.tests.length - 1);
        tests.push({ ...run, passed: test.expectedOutput === undefined ? null : outputMatches(run.stdout, test.expectedOutput) });
      }
      const verdict = tests.length < request.tests.length ? 'cancelled' : verdictOfRuns(tests.map((t) => t.verdict));
      return { ...result, tests, verdict };
    } catch (err) {
      if (!(err instanceof CompiledFilesError) || !result.compile) throw err;
      // The compile succeeded but left what no run can be given: its fault, told where a
      // compile's messages go.
      const stderr = Buffer.concat([result.compile.stderr, Buffer.from(`cellblock: ${err.message}\n`)]);
      return { ...result, compile: { ...result.compile, stderr }, verdict: 'compile_error' };
    } finally {
      if (compiled) this.pool.release(compiled);
    }
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await this.pool.close();
      await this.onClose();
    })();
    return this.closing;
  }
}
