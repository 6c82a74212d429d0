// The API's side of a live job (JobClient.submitLive): one subscriber connection per API process
// for every session's events (a ChannelSubscriber), and per session the client's stdin, held until a worker
// has taken the job (`started`: it listens from then on) and published after. The session's last
// event, `end`, carries the job's record, read from the job once it finished: the events say what
// happened as it happened, the record is what is kept. A job whose worker died sends no `end`
// message; its record (failed) ends the session all the same.
import type { TerminalSize } from '../executor/types.js';
import type { JobRecord, LiveEvent, LiveSession } from '../jobs/model.js';
import type { ChannelSubscriber } from './channel-subscriber.js';
import { decodeEvent, encodeInput, mergedInput, type WireInput } from './live-wire.js';
import { SerialOutbox } from './serial-outbox.js';

/** How long one wait for the job's end lasts before the session looks again whether it was closed. */
const END_WAIT_SLICE_MS = 10_000;
/** How often that wait reads the job in case the event of its end was missed: a session lasts as
 * long as its run, and a read of a live job's hash carries its files. */
const END_POLL_MS = 5000;
/** After the job finished, how long its worker's `end` message may take to arrive before the
 * record ends the session. The worker sends it before it stores the result, but on another
 * connection, behind the run's output: a done or cancelled job's is on its way (a busy API may be
 * reading a backlog); a failed job's worker may have died and sent none. */
const END_MESSAGE_GRACE_MS = { finished: 15_000, failed: 1000 };
/** Between tries of a wait that failed (Redis away). */
const RETRY_MS = 1000;
/** Input published to no one is lost unless the worker's `end` comes within this: it stops
 * listening just after it sent that. */
const ZERO_RECEIVERS_GRACE_MS = 1000;

const FINAL: ReadonlySet<string> = new Set(['done', 'failed', 'cancelled']);

/** What a session needs of the job client. */
interface LiveSessionJobs {
  wait(id: string, timeoutMs: number, pollMs: number): Promise<JobRecord | undefined>;
  cancel(id: string): Promise<JobRecord | undefined>;
  /** Sends on the producer connection (in order with the session's other input). */
  publish(channel: string, message: string): Promise<unknown>;
}

export class QueueLiveSession implements LiveSession {
  /** The worker has been heard from (it listens for input): input is published as it comes. */
  private workerHeard = false;
  /** Input not yet published: held until the worker is heard, then one publish at a time. */
  private readonly outbox = new SerialOutbox<WireInput>(
    (input) => this.publishInput(input),
    mergedInput,
    true,
  );
  /** Events heard before open(): the caller does not have the session yet. */
  private early: LiveEvent[] | undefined = [];
  private stdinEnded = false;
  private inputLost = false;
  private closed = false;
  private endHeard = false;
  private onEndHeard: (() => void) | undefined;

  constructor(
    readonly id: string,
    private readonly channels: { events: string; input: string },
    private readonly jobs: LiveSessionJobs,
    private readonly subscriber: Pick<ChannelSubscriber, 'unlisten'>,
    private readonly onEvent: (event: LiveEvent) => void,
    /** The job has a terminal: resize() is passed on. */
    private readonly terminal = false,
  ) {}

  /** A message on the job's events channel. */
  heard(message: string): void {
    const event = decodeEvent(message);
    if (!event || this.closed) return;
    // Any word from the worker says it listens: `started` is the first, but it may be the one lost.
    if (!this.workerHeard) {
      this.workerHeard = true;
      this.outbox.release();
    }
    if (event.type === 'end') {
      this.endHeard = true;
      this.onEndHeard?.();
      return;
    }
    this.tell(event);
  }

  /** The caller has the session: events from now on are told as they come, those before now first. */
  open(): void {
    const early = this.early ?? [];
    this.early = undefined;
    if (this.closed) return;
    for (const event of early) this.onEvent(event);
  }

  write(data: Uint8Array): void {
    if (this.stdinEnded || this.closed || data.byteLength === 0) return;
    this.input({ type: 'stdin', data: Buffer.from(data) });
  }

  endStdin(): void {
    if (this.stdinEnded || this.closed) return;
    this.stdinEnded = true;
    this.input({ type: 'stdinEnd' });
  }

  resize(size: TerminalSize): void {
    if (!this.terminal || this.closed) return;
    this.input({ type: 'resize', rows: size.rows, cols: size.cols });
  }

  async cancel(): Promise<void> {
    await this.jobs.cancel(this.id);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.subscriber.unlisten(this.channels.events);
    this.onEndHeard?.();
  }

  /** Ends the session without the job's record (its `end` says undefined): the watch failed. */
  fail(): void {
    this.tell({ type: 'end', record: undefined });
    this.close();
  }

  /** Waits for the job's end, then tells the record and stops listening. */
  async watch(): Promise<void> {
    let record: JobRecord | undefined;
    for (;;) {
      if (this.closed) return;
      try {
        record = await this.jobs.wait(this.id, END_WAIT_SLICE_MS, END_POLL_MS);
      } catch {
        // Redis away for a whole slice: the job is safe in it; look again.
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        continue;
      }
      if (!record || FINAL.has(record.status)) break;
    }
    // A job no worker said a word for (cancelled while queued, or ended before its first stage:
    // refused or cancelled) has no `end` to wait for.
    if (this.workerHeard && !this.endHeard && !this.closed) {
      const graceMs = record?.status === 'failed' || !record ? END_MESSAGE_GRACE_MS.failed : END_MESSAGE_GRACE_MS.finished;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.onEndHeard = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.tell({ type: 'end', record });
    this.close();
  }

  private tell(event: LiveEvent): void {
    if (this.closed) return;
    if (this.early) this.early.push(event);
    else this.onEvent(event);
  }

  private input(input: WireInput): void {
    this.outbox.add(input);
  }

  private async publishInput(input: WireInput): Promise<void> {
    let receivers: unknown;
    try {
      receivers = await this.jobs.publish(this.channels.input, encodeInput(input));
    } catch {
      // Redis away: the program's input has a gap, which it must not read on past unknowing.
      this.loseInput();
      return;
    }
    // Nobody listening: the worker has ended the job (its `end` is on its way) or its connection
    // is being remade (what was published meanwhile is gone).
    if (receivers === 0) setTimeout(() => this.loseInput(), ZERO_RECEIVERS_GRACE_MS);
  }

  private loseInput(): void {
    if (this.inputLost || this.endHeard) return;
    this.inputLost = true;
    this.tell({ type: 'inputLost' });
  }
}
