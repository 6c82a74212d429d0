// Errors of the executor itself (not of the program, which ends in a verdict).
// `unavailable`: this executor can run no more jobs (its pool's mount agent died); the job itself
// is not at fault, and another worker can run it. `no_sandbox_uid`: a slot for the job could not
// be made, every sandbox uid of the machine being leased by its workers' slots (uid-leases.ts).
// `no_descriptors`: the job's sandbox could not be made or run for want of a file descriptor, the
// worker process's (EMFILE) or the machine's (ENFILE). Both are the host's shortages, not the
// job's: the worker hands such a job back to the queue to be taken again later, a few times, by
// one rule for both (worker.ts, HOST_SHORTAGE_RETRY).
export type ExecutorErrorCode = 'unknown_runtime' | 'unknown_variant' | 'unknown_image' | 'bad_request' | 'closed' | 'unavailable' | 'no_sandbox_uid' | 'no_descriptors';

/** What ran out, by the errno a descriptor shortage has: never the program's own (its openFiles
 * limit applies from its exec on, after every step of the sandbox's). */
const DESCRIPTOR_SHORTAGES: Record<string, string> = {
  EMFILE: "the worker process reached its open files limit (RLIMIT_NOFILE)",
  ENFILE: "the machine's open files are all in use (fs.file-max)",
};

/** `err` (an error with a `code`, a sandbox's `step`, a system call's `syscall`) as the executor's
 * `no_descriptors`, where it is a descriptor shortage; else undefined. Said without paths. */
export function descriptorShortage(err: unknown): ExecutorError | undefined {
  const { code, step, syscall } = (err ?? {}) as { code?: unknown; step?: unknown; syscall?: unknown };
  if (typeof code !== 'string' || !Object.hasOwn(DESCRIPTOR_SHORTAGES, code)) return undefined;
  const where = typeof step === 'string' ? ` at the sandbox's setup step ${step}` : typeof syscall === 'string' ? ` in ${syscall}` : '';
  return new ExecutorError('no_descriptors', `the job's sandbox could not be made: ${DESCRIPTOR_SHORTAGES[code]} (${code}${where})`);
}

export class ExecutorError extends Error {
  override readonly name = 'ExecutorError';
  constructor(
    readonly code: ExecutorErrorCode,
    message: string,
  ) {
    super(message);
  }
}
