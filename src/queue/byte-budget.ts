// Bytes held at once by work that may hold many: a claim waits until its bytes fit beside what is
// held, first come first served; a claim larger than the whole budget goes when nothing else is
// held, alone, so that no piece of work waits for ever.

export class ByteBudgetAbortedError extends Error {
  override readonly name = 'ByteBudgetAbortedError';
}

interface Waiter {
  bytes: number;
  grant(): void;
}

export class ByteBudget {
  private heldByClaims = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly limitBytes: number) {}

  /** Bytes held by claims granted and not yet released. */
  get heldBytes(): number {
    return this.heldByClaims;
  }

  /** Waits until `bytes` may be held; resolves with the function that releases them (once).
   * Rejects with ByteBudgetAbortedError when `signal` aborts first. */
  claim(bytes: number, signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new ByteBudgetAbortedError('aborted before its bytes were free'));
      const waiter: Waiter = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.heldByClaims += bytes;
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.heldByClaims -= bytes;
            this.grantWaiting();
          });
        },
      };
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index < 0) return;
        this.waiters.splice(index, 1);
        reject(new ByteBudgetAbortedError('aborted before its bytes were free'));
        // The claim at the head may have held back smaller ones behind it.
        this.grantWaiting();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.grantWaiting();
    });
  }

  /** Grants waiting claims in order while the first one fits (or nothing is held). */
  private grantWaiting(): void {
    while (this.waiters.length > 0) {
      const first = this.waiters[0]!;
      if (this.heldByClaims > 0 && this.heldByClaims + first.bytes > this.limitBytes) return;
      this.waiters.shift();
      first.grant();
    }
  }
}
