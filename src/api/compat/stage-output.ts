// Reading a stored stage's outputs the way the compat fronts need them: bytes, or text.
import { FILE_NAME_MAX_BYTES, hasLoneSurrogate, NAME_MAX_BYTES } from '../../executor/check.js';
import type { StoredStage } from '../../jobs/model.js';

/** True when the bytes are valid UTF-8 (Judge0 refuses to send anything else as text); the job
 * model's own test (expectedOutputFields), so that the two never disagree. */
export { isUtf8 } from 'node:buffer';

export const stdoutBytes = (stage: StoredStage): Buffer => Buffer.from(stage.stdoutBase64, 'base64');
export const stderrBytes = (stage: StoredStage): Buffer => Buffer.from(stage.stderrBase64, 'base64');

/** Text with invalid UTF-8 replaced by U+FFFD: what a Node front that builds strings sends. */
export const lossyText = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

/** A file name for the work dir: relative, no "..", no empty segments, no NUL; parts of at most
 * NAME_MAX_BYTES and FILE_NAME_MAX_BYTES in all, no lone UTF-16 surrogate, as /v1's (the worker's
 * own rule). */
export function isSafeRelativePath(name: string): boolean {
  if (name.length === 0 || hasLoneSurrogate(name) || Buffer.byteLength(name) > FILE_NAME_MAX_BYTES || name.includes('\0') || name.startsWith('/')) return false;
  return name.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..' && Buffer.byteLength(segment) <= NAME_MAX_BYTES);
}

const SIGXCPU = 24;

/** The stage's verdict, except that a death by SIGXCPU counts as the CPU time limit, as the engine
 * itself decides it since 3a799e9: a result an older worker stored (kept for the result's TTL, or
 * made during a rolling upgrade) still says `signaled` for one. */
export function effectiveVerdict(stage: StoredStage): StoredStage['verdict'] {
  return stage.verdict === 'signaled' && stage.signal === SIGXCPU ? 'cpu_time_limit' : stage.verdict;
}
