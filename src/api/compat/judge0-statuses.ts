// Judge0 CE's status table (app/enumerations/status.rb) and how our verdicts land in it, following
// IsolateJob#determine_status: isolate's TO → 5, SG → by signal (7, 8, 9, 10, else 12), RE → 11,
// XX → 13 (14 when execve itself failed), otherwise 3 or 4 by the expected output.
import type { StoredStage } from '../../jobs/model.js';
import { effectiveVerdict } from './stage-output.js';

export interface Judge0Status {
  id: number;
  description: string;
}

export const JUDGE0_STATUSES = {
  queue: { id: 1, description: 'In Queue' },
  process: { id: 2, description: 'Processing' },
  ac: { id: 3, description: 'Accepted' },
  wa: { id: 4, description: 'Wrong Answer' },
  tle: { id: 5, description: 'Time Limit Exceeded' },
  ce: { id: 6, description: 'Compilation Error' },
  sigsegv: { id: 7, description: 'Runtime Error (SIGSEGV)' },
  sigxfsz: { id: 8, description: 'Runtime Error (SIGXFSZ)' },
  sigfpe: { id: 9, description: 'Runtime Error (SIGFPE)' },
  sigabrt: { id: 10, description: 'Runtime Error (SIGABRT)' },
  nzec: { id: 11, description: 'Runtime Error (NZEC)' },
  other: { id: 12, description: 'Runtime Error (Other)' },
  boxerr: { id: 13, description: 'Internal Error' },
  exeerr: { id: 14, description: 'Exec Format Error' },
} as const satisfies Record<string, Judge0Status>;

export const JUDGE0_STATUS_LIST: Judge0Status[] = Object.values(JUDGE0_STATUSES);

const SIGFPE = 8;
const SIGKILL = 9;
const SIGSEGV = 11;
const SIGABRT = 6;
const SIGXFSZ = 25;

/** Status.find_runtime_error_by_status_code. */
export function statusForSignal(signal: number | null): Judge0Status {
  switch (signal) {
    case SIGSEGV:
      return JUDGE0_STATUSES.sigsegv;
    case SIGXFSZ:
      return JUDGE0_STATUSES.sigxfsz;
    case SIGFPE:
      return JUDGE0_STATUSES.sigfpe;
    case SIGABRT:
      return JUDGE0_STATUSES.sigabrt;
    default:
      return JUDGE0_STATUSES.other;
  }
}

/** errnos with which Judge0 turns isolate's "execve(...): <error>" into Exec Format Error. */
const EXEC_FAILURES = new Set(['ENOEXEC', 'ENOENT', 'EACCES']);

/** One run's outcome as Judge0 reports it: status, isolate's meta `message`, exit code and signal.
 * Judge0 stores `exitcode || 0`, so a killed program reports exit_code 0. */
export interface Judge0RunOutcome {
  status: Judge0Status;
  message: string | null;
  exitCode: number;
  exitSignal: number | null;
}

export function judge0RunOutcome(stage: StoredStage): Judge0RunOutcome {
  const exitCode = stage.exitCode ?? 0;
  switch (effectiveVerdict(stage)) {
    case 'ok':
      return { status: stage.passed === false ? JUDGE0_STATUSES.wa : JUDGE0_STATUSES.ac, message: null, exitCode, exitSignal: null };
    case 'cpu_time_limit':
      return { status: JUDGE0_STATUSES.tle, message: 'Time limit exceeded', exitCode, exitSignal: null };
    case 'wall_time_limit':
      return { status: JUDGE0_STATUSES.tle, message: 'Time limit exceeded (wall clock)', exitCode, exitSignal: null };
    case 'signaled':
      return { status: statusForSignal(stage.signal), message: `Caught fatal signal ${stage.signal}`, exitCode, exitSignal: stage.signal };
    // The cgroup OOM killer's SIGKILL: isolate reports SG with signal 9, which Judge0 files as "Other".
    case 'memory_limit': {
      const signal = stage.signal ?? SIGKILL;
      return { status: statusForSignal(signal), message: `Caught fatal signal ${signal}`, exitCode, exitSignal: signal };
    }
    // Judge0 bounds output with isolate's file size limit (stdout is a file): the program dies of SIGXFSZ.
    case 'output_limit':
      return { status: JUDGE0_STATUSES.sigxfsz, message: `Caught fatal signal ${SIGXFSZ}`, exitCode, exitSignal: SIGXFSZ };
    case 'runtime_error':
    case 'compile_error':
      return { status: JUDGE0_STATUSES.nzec, message: `Exited with error status ${stage.exitCode}`, exitCode, exitSignal: null };
    case 'cancelled':
      return { status: JUDGE0_STATUSES.boxerr, message: 'the submission was cancelled', exitCode, exitSignal: null };
    case 'internal_error': {
      const error = stage.error;
      const execFailed = error !== undefined && /exec/i.test(error.step) && EXEC_FAILURES.has(error.code);
      return {
        status: execFailed ? JUDGE0_STATUSES.exeerr : JUDGE0_STATUSES.boxerr,
        message: error?.message ?? 'internal error',
        exitCode,
        exitSignal: null,
      };
    }
  }
}
