// A runtime file's limit placeholders (images/README.md, "Runtimes") as the executor fills them
// in, on a fake pool and stage runner (no sandbox): each stage's argv and env get that stage's own
// limits (the compile's, the run's, a judge program's), whichever way the stage runs.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { StageRunner, StageSpec } from '../../src/executor/engine.js';
import { SubmissionExecutor } from '../../src/executor/executor.js';
import type { ExecuteRequest } from '../../src/executor/types.js';
import type { Runtime } from '../../src/images/types.js';
import type { Limits, RunResult } from '../../src/sandbox/types.js';
import { MiB } from '../../src/units.js';
import { fakePool } from './helpers.js';

const skip = process.getuid?.() === 0 ? false : "needs root: the work dirs' files are chowned to the sandbox's uid";
const scratch = mkdtempSync(join(tmpdir(), 'cellblock-limit-placeholders-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const limits: Limits = {
  cpuTimeMs: 2000, wallTimeMs: 5000, memoryBytes: 256 * MiB, pids: 32, outputBytes: MiB,
  fileSizeBytes: 16 * MiB, openFiles: 64, stackBytes: 8 * MiB, tmpBytes: 16 * MiB, cpuCores: 1,
};

/** A compiled runtime whose stages are told their limits: in argv (the compile's and the run's)
 * and in env (the same text, expanded per stage; `heapVariable`, each runtime its own). */
function told(id: string, run: string, heapVariable: string): Runtime {
  return {
    id, language: id, version: '1', aliases: [], image: id, sourceFile: 'main.c',
    compile: { argv: ['/bin/cc', '-m{memoryMiB}', '{files}'] },
    run: { argv: [run, '-m{memoryMiB}', '-t{cpuCores}'] },
    env: { PATH: '/bin', [heapVariable]: '{memoryBytes:50%}' },
    defaultLimits: limits,
    maxLimits: { ...limits, memoryBytes: 1024 * MiB, cpuCores: 2 },
    helloWorld: { source: '', stdout: '' },
  };
}

const ok: RunResult = {
  verdict: 'ok', exitCode: 0, signal: null, signalName: null, stdout: Buffer.from('1\n'), stderr: Buffer.alloc(0),
  stdoutTruncated: false, stderrTruncated: false, metrics: { cpuTimeMs: 1, wallTimeMs: 1, peakMemoryBytes: 1 },
};

let jobs = 0;

/** Runs `job` on the fake executor: every stage's argv and env, in the order they started. */
async function stagesOf(job: ExecuteRequest): Promise<{ argv: string[]; env: Record<string, string> }[]> {
  const pool = fakePool(join(scratch, `job-${++jobs}`));
  const stages: { argv: string[]; env: Record<string, string> }[] = [];
  const record = ({ argv, env }: StageSpec) => stages.push({ argv, env });
  const runner: StageRunner<never> = {
    run: async (_slot, stage) => (record(stage), ok),
    runConnected: async (_first, firstStage, _second, secondStage) => (record(firstStage), record(secondStage), [ok, ok]),
    runStreaming: () => assert.fail('no live job here'),
  };
  const executor = new SubmissionExecutor([told('prog', './prog', 'HEAP'), told('judge', './judge', 'JUDGE_HEAP')], pool, runner);
  try {
    const result = await executor.execute(job);
    assert.equal(result.verdict, 'ok', JSON.stringify(result));
  } finally {
    await executor.close();
  }
  return stages;
}

const files = [{ name: 'main.c', content: Buffer.from('int main(void) { return 0; }\n') }];
const heap = (memoryMiB: number) => String(memoryMiB * MiB * 0.5);

test("each stage is told its own limits: the compile's, the run's, a checker's compile and run", { skip }, async () => {
  const stages = await stagesOf({
    runtimeId: 'prog',
    files,
    limits: { memoryBytes: 100 * MiB, cpuCores: 2 },
    compileLimits: { memoryBytes: 300 * MiB },
    tests: [{ stdin: '', expectedOutput: '1\n' }],
    checker: { runtimeId: 'judge', files, limits: { memoryBytes: 50 * MiB }, compileLimits: { memoryBytes: 30 * MiB } },
  });
  assert.deepEqual(stages, [
    { argv: ['/bin/cc', '-m300', 'main.c'], env: { PATH: '/bin', HEAP: heap(300) } },
    { argv: ['/bin/cc', '-m30', 'main.c'], env: { PATH: '/bin', JUDGE_HEAP: heap(30) } },
    { argv: ['./prog', '-m100', '-t2'], env: { PATH: '/bin', HEAP: heap(100) } },
    { argv: ['./judge', '-m50', '-t1', 'input.txt', 'output.txt', 'answer.txt'], env: { PATH: '/bin', JUDGE_HEAP: heap(50) } },
  ]);
});

test('an interactive test: the program and its interactor, each with its own', { skip }, async () => {
  const stages = await stagesOf({
    runtimeId: 'prog',
    files,
    tests: [{ stdin: 'input\n' }],
    interactor: { runtimeId: 'judge', files, limits: { memoryBytes: 64 * MiB } },
  });
  // The compiles with the runtimes' defaults (no compile limits of their own), then both runs.
  assert.deepEqual(stages.slice(2), [
    { argv: ['./prog', '-m256', '-t1'], env: { PATH: '/bin', HEAP: heap(256) } },
    { argv: ['./judge', '-m64', '-t1', 'input.txt', 'output.txt'], env: { PATH: '/bin', JUDGE_HEAP: heap(64) } },
  ]);
});
