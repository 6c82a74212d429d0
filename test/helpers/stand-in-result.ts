// What a stand-in executor answers for a job that ran ok at once: its stdout as given, a ms of CPU
// and wall time, a MiB of memory.
import type { ExecuteResult, StageResult } from '../../src/executor/types.js';

export const okStage = (stdout: Buffer): StageResult => ({
  verdict: 'ok',
  exitCode: 0,
  signal: null,
  signalName: null,
  stdout,
  stderr: Buffer.alloc(0),
  stdoutTruncated: false,
  stderrTruncated: false,
  metrics: { cpuTimeMs: 1, wallTimeMs: 1, peakMemoryBytes: 1 << 20 },
});

export const okResult = (stdout: Buffer): ExecuteResult => ({ verdict: 'ok', runtime: { id: 'python', language: 'python', version: '3.11.2' }, run: okStage(stdout) });
