// The verdict of a run, decided once from what init observed and what the cgroup counted.
// docs/theory-of-operation.md, "Verdicts": the first matching row wins.
import os from 'node:os';
import type { Limits, Verdict } from './types.js';

export interface VerdictInputs {
  setupFailed: boolean;
  killedForCancel: boolean;
  killedForCpu: boolean;
  killedForWall: boolean;
  killedForOutput: boolean;
  oomKills: number;
  cpuTimeMs: number;
  exitCode: number | null;
  signal: number | null;
  outputBytes: number;
  limits: Limits;
}

const SIGKILL = os.constants.signals.SIGKILL;
const SIGXCPU = os.constants.signals.SIGXCPU;

export function decideVerdict(v: VerdictInputs): Verdict {
  if (v.setupFailed) return 'internal_error';
  if (v.killedForCancel) return 'cancelled';
  if (v.oomKills > 0) return 'memory_limit';
  if (v.killedForCpu) return 'cpu_time_limit';
  if ((v.signal === SIGXCPU || v.signal === SIGKILL) && v.cpuTimeMs >= v.limits.cpuTimeMs) return 'cpu_time_limit';
  if (v.killedForWall) return 'wall_time_limit';
  if (v.killedForOutput || v.outputBytes > v.limits.outputBytes) return 'output_limit';
  if (v.signal !== null) return 'signaled';
  if (v.exitCode !== null && v.exitCode !== 0) return 'runtime_error';
  return 'ok';
}

// First name wins where two share a number (SIGABRT before SIGIOT).
const SIGNAL_NAMES = new Map<number, string>();
for (const [name, number] of Object.entries(os.constants.signals)) {
  if (!SIGNAL_NAMES.has(number)) SIGNAL_NAMES.set(number, name);
}

export function signalName(signal: number | null): string | null {
  if (signal === null) return null;
  return SIGNAL_NAMES.get(signal) ?? `SIG${signal}`;
}
