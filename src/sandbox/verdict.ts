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
  /** What the program wrote to its stdout and stderr memfds (0 for a pipe: its reader bounds it);
   * a memfd may hold one byte past fileSizeBytes (native/src/container.cc, configureProgram). */
  stdoutBytes: number;
  stderrBytes: number;
  limits: Limits;
}

const SIGKILL = os.constants.signals.SIGKILL;
const SIGXCPU = os.constants.signals.SIGXCPU;

export function decideVerdict(v: VerdictInputs): Verdict {
  if (v.setupFailed) return 'internal_error';
  // Every run that ends (killed for a limit or a cancel too) ends with its program's exit status
  // or signal, recorded by init before "done". Neither means that record never came (the engine
  // reports an init gone without "done" as init_died): the sandbox's failure, never data, and
  // never `ok`, which is an exit with status 0.
  if (v.exitCode === null && v.signal === null) return 'internal_error';
  if (v.killedForCancel) return 'cancelled';
  if (v.oomKills > 0) return 'memory_limit';
  if (v.killedForCpu) return 'cpu_time_limit';
  // SIGXCPU is RLIMIT_CPU's, the engine's backstop for cpuTimeMs: its clock (the process's,
  // charged by scheduler ticks) may reach it before the cgroup's count reaches the limit. The
  // program could send the signal itself, which no wait status tells apart; that gains it nothing
  // it could not get by spinning.
  if (v.signal === SIGXCPU) return 'cpu_time_limit';
  if (v.signal === SIGKILL && v.cpuTimeMs >= v.limits.cpuTimeMs) return 'cpu_time_limit';
  if (v.killedForWall) return 'wall_time_limit';
  // Each stream is a file (a memfd) under the file size limit too, so past fileSizeBytes is an
  // output flood as past outputBytes is: by size, whatever the program did about SIGXFSZ.
  if (
    v.killedForOutput ||
    v.stdoutBytes + v.stderrBytes > v.limits.outputBytes ||
    v.stdoutBytes > v.limits.fileSizeBytes ||
    v.stderrBytes > v.limits.fileSizeBytes
  ) {
    return 'output_limit';
  }
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
