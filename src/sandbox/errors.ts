// Turning native failures ({step, errno}) and cgroup failures into the engine's typed errors.
import os from 'node:os';
import util from 'node:util';
import { CgroupError } from './cgroups/index.js';
import type { NativeFailure, NativeSetupErrorFields } from './native.js';
import { SandboxError } from './types.js';

function describeErrno(errno: number): { code: string; message: string } {
  const entry = errno > 0 ? util.getSystemErrorMap().get(-errno) : undefined;
  return entry ? { code: entry[0], message: entry[1] } : { code: errno === 0 ? 'UNKNOWN' : `E${errno}`, message: 'unknown error' };
}

export function sandboxErrorFromFailure(failure: NativeFailure): SandboxError {
  const { code, message } = describeErrno(failure.errno);
  // No step of the recipe failed: init was gone (killed from outside), whether before the start
  // or during the run, where "setup failed" would mislead whoever reads the job's error.
  if (failure.step === 'init_died') {
    return new SandboxError(failure.step, failure.errno, code, `the container's init died before the run's end (killed from outside the sandbox, by pid): ${code} (${message})`);
  }
  return new SandboxError(failure.step, failure.errno, code, `sandbox setup failed at ${failure.step}: ${code} (${message})`);
}

/** A run that ended with neither an exit status nor a signal for its program and no failed step
 * (decideVerdict's defensive internal_error): init never recorded the program's end. The engine
 * reports an init gone without "done" as init_died itself; this is the backstop should any other
 * way to such an end appear. */
export function unrecordedEndError(): SandboxError {
  return new SandboxError('init_died', 0, 'UNKNOWN', "the run ended with neither an exit status nor a signal for its program: the container's init never recorded its end");
}

export function sandboxErrorFromCgroup(error: CgroupError): SandboxError {
  const errno = (os.constants.errno as Record<string, number>)[error.code] ?? 0;
  return new SandboxError(`cgroup_${error.operation}`, errno, error.code, error.message);
}

/** Errors thrown by the native constructor or start for a failed step; anything else is rethrown. */
export function toSandboxError(error: unknown): SandboxError {
  if (error instanceof SandboxError) return error;
  if (error instanceof CgroupError) return sandboxErrorFromCgroup(error);
  const fields = error as NativeSetupErrorFields;
  if (error instanceof Error && typeof fields.step === 'string' && typeof fields.errno === 'number') {
    return sandboxErrorFromFailure({ step: fields.step, errno: fields.errno });
  }
  throw error;
}
