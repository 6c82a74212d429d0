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
  return new SandboxError(failure.step, failure.errno, code, `sandbox setup failed at ${failure.step}: ${code} (${message})`);
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
