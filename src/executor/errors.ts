// Errors of the executor itself (not of the program, which ends in a verdict).
// `unavailable`: this executor can run no more jobs (its pool's mount agent died); the job itself
// is not at fault, and another worker can run it. `no_sandbox_uid`: a slot for the job could not
// be made, every sandbox uid of the machine being leased by its workers' slots (uid-leases.ts): a
// shortage, for which the worker hands the job back to be taken again later, a few times.
export type ExecutorErrorCode = 'unknown_runtime' | 'unknown_variant' | 'unknown_image' | 'bad_request' | 'closed' | 'unavailable' | 'no_sandbox_uid';

export class ExecutorError extends Error {
  override readonly name = 'ExecutorError';
  constructor(
    readonly code: ExecutorErrorCode,
    message: string,
  ) {
    super(message);
  }
}
