// The verdict table (docs/theory-of-operation.md, "Verdicts") as decideVerdict applies it, for
// inputs a live run cannot be made to give.
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import type { Limits } from '../../src/sandbox/types.js';
import { MiB } from '../../src/units.js';
import { decideVerdict, type VerdictInputs } from '../../src/sandbox/verdict.js';

// Not the fixture's: that module loads the engine, which this pure function does not need.
const LIMITS: Limits = {
  cpuTimeMs: 5000,
  wallTimeMs: 10000,
  memoryBytes: 256 * MiB,
  pids: 32,
  outputBytes: MiB,
  fileSizeBytes: 16 * MiB,
  openFiles: 64,
  stackBytes: 8 * MiB,
  tmpBytes: 16 * MiB,
  cpuCores: 1,
};

const ended = (fields: Partial<VerdictInputs>): VerdictInputs => ({
  setupFailed: false,
  killedForCancel: false,
  killedForCpu: false,
  killedForWall: false,
  killedForOutput: false,
  oomKills: 0,
  cpuTimeMs: 1,
  exitCode: 0,
  signal: null,
  stdoutBytes: 0,
  stderrBytes: 0,
  limits: LIMITS,
  ...fields,
});

describe('decideVerdict', () => {
  it('says ok only for an exit with status 0', () => {
    assert.equal(decideVerdict(ended({ exitCode: 0 })), 'ok');
    assert.equal(decideVerdict(ended({ exitCode: 3 })), 'runtime_error');
    assert.equal(decideVerdict(ended({ exitCode: null, signal: os.constants.signals.SIGSEGV })), 'signaled');
  });

  it('never calls a run with neither an exit code nor a signal ok: the sandbox failed to record its end', () => {
    assert.equal(decideVerdict(ended({ exitCode: null, signal: null })), 'internal_error');
    // Whatever else was seen: without the program's end there is no outcome to judge.
    for (const seen of [{ killedForWall: true }, { killedForCancel: true }, { oomKills: 1 }, { killedForOutput: true }]) {
      assert.equal(decideVerdict(ended({ exitCode: null, signal: null, ...seen })), 'internal_error', JSON.stringify(seen));
    }
  });
});
