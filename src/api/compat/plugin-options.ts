// What the app hands each compat front: the job service, the runtime list and the server's maxima.
import type { LiveFrontOptions } from '../live-socket.js';

/** LiveFrontOptions' job service, runtimes, the server's maxima (files, arguments, tests per job:
 * the same for every front) and live sockets (a front's own live route registers each), and: */
export interface CompatPluginOptions extends LiveFrontOptions {
  /** Longest a synchronous request (Piston execute, Judge0 `wait=true`) holds for its job. */
  maxWaitMs?: number;
  /** CELLBLOCK_MAX_QUEUED_JOBS, for the fronts that tell it (Judge0's max_queue_size). */
  maxQueuedJobs: number;
  /** The most the jobs of one request, all its submissions together, may hold beyond what its body
   * carried: Judge0's additional_files unpacked, a stdin and expected output stored once per run
   * (number_of_runs). CELLBLOCK_BODY_LIMIT_BYTES: a request then queues at most about twice its
   * body (and a third more, base64 in Redis). */
  maxExpansionBytes: number;
}

export const DEFAULT_MAX_WAIT_MS = 60_000;

/** The HTTP status and Retry-After of a service error (QueueFullError, QueueUnavailableError,
 * fastify's own 4xx such as a malformed body), read from the error's own fields. */
export function serviceErrorStatus(error: unknown): { statusCode: number; retryAfterSeconds?: number } | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const { name, statusCode, retryAfterSeconds } = error as { name?: string; statusCode?: number; retryAfterSeconds?: number };
  if (name === 'QueueFullError') return { statusCode: 429, retryAfterSeconds };
  if (name === 'QueueUnavailableError') return { statusCode: 503, retryAfterSeconds };
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 600) {
    return typeof retryAfterSeconds === 'number' ? { statusCode, retryAfterSeconds } : { statusCode };
  }
  return undefined;
}
