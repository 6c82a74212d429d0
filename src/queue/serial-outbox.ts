// Messages published one at a time, in order, what is added while one is on its way merged into
// the next where it can be: a client's or a program's many small writes become a few publishes a
// round trip, not one a byte. Both ends of a live job use it: the API for stdin, the worker for
// its events.

/** Adjacent bytes merged into one message up to this. */
const MERGE_MAX_BYTES = 64 * 1024;

/** `last` and `next` as one buffer, or undefined when that would pass MERGE_MAX_BYTES. */
export function mergedBytes(last: Buffer, next: Buffer): Buffer | undefined {
  return last.length + next.length <= MERGE_MAX_BYTES ? Buffer.concat([last, next]) : undefined;
}

export class SerialOutbox<T> {
  private readonly queue: T[] = [];
  private draining: Promise<void> | undefined;

  /** `publish` must not reject (it says what a failure means itself); `merge` answers the one
   * message that `last` and `next` make, or undefined for two. `held`: nothing goes until
   * release(). */
  constructor(
    private readonly publish: (item: T) => Promise<void>,
    private readonly merge: (last: T, next: T) => T | undefined,
    private held = false,
  ) {}

  add(item: T): void {
    const last = this.queue.at(-1);
    const merged = last === undefined ? undefined : this.merge(last, item);
    if (merged === undefined) this.queue.push(item);
    else this.queue[this.queue.length - 1] = merged;
    if (!this.held) this.draining ??= this.drain();
  }

  /** Publishes what was held, and from now on what comes. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (this.queue.length > 0) this.draining ??= this.drain();
  }

  /** Resolves once what was added so far has been published. */
  async flushed(): Promise<void> {
    await this.draining;
  }

  private async drain(): Promise<void> {
    try {
      for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) await this.publish(item);
    } finally {
      this.draining = undefined;
    }
  }
}
