// Errors of the executor itself (not of the program, which ends in a verdict).
export type ExecutorErrorCode = 'unknown_runtime' | 'unknown_variant' | 'unknown_image' | 'bad_request' | 'closed';

export class ExecutorError extends Error {
  override readonly name = 'ExecutorError';
  constructor(
    readonly code: ExecutorErrorCode,
    message: string,
  ) {
    super(message);
  }
}
