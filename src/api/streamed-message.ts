// A live socket's last message made as it is sent (JobSocket.endStreamed: a `done` with large
// outputs, its text from json-stream.ts), sent as one WebSocket message in fragments at the pace
// its client reads it. JobSocket says when it starts and how the socket ends; this sends it.
import type { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { WebSocket } from 'ws';
import { ApiError } from './errors.js';

/** A last message made as it is sent (endStreamed: a `done` with large outputs) goes in fragments
 * of at most this many bytes, each after a turn of the event loop. */
const LIVE_FRAGMENT_BYTES = 64 * 1024;
/** Its next fragment waits while the socket holds this many bytes unsent, until it holds less
 * (ws has handed enough of what was sent to the kernel): the API holds at most this and one piece
 * of the text, not the message. */
export const LIVE_FRAGMENTS_BUFFER_BYTES = 1024 * 1024;

/** How a message sent in fragments (endStreamed) waits for its client, who must take it steadily
 * and not too slowly: it holds the job's whole view (up to CELLBLOCK_MAX_JOB_OUTPUT_BYTES of
 * outputs, hundreds of MB as text) and its client's live-socket place while it goes. */
export interface FragmentPace {
  /** A wait for room ends the socket 4429 once this long passes with nothing more of the message
   * handed to the kernel (the client reads nothing); each fragment that goes starts it again. */
  stallMs: number;
  /** The slowest the client may take the message on average: a wait for room also ends it 4429
   * once the message began max(stallMs, bytes sent so far ÷ this) ago. */
  minBytesPerSecond: number;
  /** How long an API that stops waits for the message to go before it cuts it (close 4503 alone). */
  stopMs: number;
}

/** 30 s: ws's own closing handshake's timeout, the time a client always had to take what was left
 * unread once its socket was closed. 256 KiB/s (2 Mbit/s): below any link a client that asks for
 * a job's output on a live socket has; at it, the default CELLBLOCK_MAX_JOB_OUTPUT_BYTES (128 MiB,
 * ~171 MB as base64) goes in about 11 min, so a client reading just fast enough no longer holds
 * the view (and its place) for hours. A stop waits as long as one stalled fragment would (30 s),
 * and no longer: the stop of every other request and of the workers behind it waits on it. */
export const LIVE_FRAGMENT_PACE: FragmentPace = { stallMs: 30_000, minBytesPerSecond: 256 * 1024, stopMs: 30_000 };

/** One text message sent on `socket` in fragments as `text` is read, each once the socket holds
 * less than LIVE_FRAGMENTS_BUFFER_BYTES unsent and after a turn of the event loop (the API never
 * holds the message whole), as fast as its client takes it and no slower than `pace` allows. */
export class StreamedMessage {
  /** A fragment has gone (or is going): a failure from now on can only close the socket, as no
   * message can come inside another. */
  private fragmentSent = false;
  private startedAt = 0;
  private sentBytes = 0;
  /** The API stopping cuts the message (cut()): a wait for room ends with its reason. */
  private readonly cutter = new AbortController();
  /** The next fragment's write to the kernel, while a wait for room listens for it. */
  private wrote: (() => void) | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly text: Readable,
    readonly pace: FragmentPace = LIVE_FRAGMENT_PACE,
  ) {}

  /** Whether a fragment has been sent: the client holds a part of the message. */
  get started(): boolean {
    return this.fragmentSent;
  }

  /** Sends the whole text as one message (once); true once its last fragment is sent, false if
   * the socket stopped being open first (the client gone). Rejects, the text destroyed, with 429
   * client_too_slow where room does not come in time (FragmentPace), with the cut's reason where
   * the API stopping cut it, and with the text's own error where it cannot be made. */
  async send(): Promise<boolean> {
    try {
      return await this.sendFragments();
    } catch (error) {
      this.text.destroy();
      throw error;
    }
  }

  /** The API is stopping: the message goes no further; send() rejects with `reason`. */
  cut(reason: unknown): void {
    this.cutter.abort(reason);
  }

  private async sendFragments(): Promise<boolean> {
    this.startedAt = Date.now();
    // Each fragment is sent once the next is known, so that the last can say it is (fin).
    let held: Buffer | undefined;
    for await (const chunk of this.text as AsyncIterable<Buffer>) {
      for (let at = 0; at < chunk.length; at += LIVE_FRAGMENT_BYTES) {
        if (held) {
          this.fragmentSent = true;
          if (!(await this.fragment(held, false))) return false;
        }
        held = chunk.subarray(at, at + LIVE_FRAGMENT_BYTES);
      }
    }
    return held === undefined || (await this.fragment(held, true));
  }

  /** Sends one fragment, then waits for room for the next (not after the last). False where the
   * socket is not open. Throws 429 client_too_slow where room does not come in time
   * (FragmentPace), and the cut's reason where the API stopping cut it. */
  private async fragment(data: Buffer, fin: boolean): Promise<boolean> {
    const { socket, pace } = this;
    this.cutter.signal.throwIfAborted();
    if (socket.readyState !== socket.OPEN) return false;
    this.sentBytes += data.length;
    // The callback comes once ws has handed the fragment (and so all before it) to the kernel, or
    // with an error where the socket went first.
    socket.send(data, { binary: false, fin }, () => this.wrote?.());
    if (fin) return true;
    if (socket.bufferedAmount < LIVE_FRAGMENTS_BUFFER_BYTES) {
      await nextTurn();
      return true;
    }
    // Until the socket holds less than the bound (not until all of it has gone: a client reading
    // steadily keeps the fragments going as it reads).
    const deadline = this.startedAt + Math.max(pace.stallMs, (this.sentBytes / pace.minBytesPerSecond) * 1000);
    while (socket.readyState === socket.OPEN && socket.bufferedAmount >= LIVE_FRAGMENTS_BUFFER_BYTES) {
      const leftMs = deadline - Date.now();
      const stall = leftMs > pace.stallMs;
      if ((await this.nextWrite(stall ? pace.stallMs : leftMs)) === 'expired') {
        const why = stall
          ? `nothing more of the last message went to the client for ${pace.stallMs} ms`
          : `the client took the last message at less than ${pace.minBytesPerSecond} bytes/s (${this.sentBytes} bytes sent in ${Date.now() - this.startedAt} ms)`;
        throw new ApiError(429, 'client_too_slow', why);
      }
    }
    return true;
  }

  /** Resolves with the next fragment's write to the kernel (or the socket's close), `expired`
   * after `waitMs`; rejects with the cut's reason where the API stopping cut the message. */
  private nextWrite(waitMs: number): Promise<'written' | 'expired'> {
    const { socket } = this;
    const cut = this.cutter.signal;
    cut.throwIfAborted();
    return new Promise((resolve, reject) => {
      const finish = (outcome: 'written' | 'expired' | 'cut') => {
        clearTimeout(timer);
        socket.off('close', closed);
        cut.removeEventListener('abort', aborted);
        this.wrote = undefined;
        if (outcome === 'cut') reject(cut.reason);
        else resolve(outcome);
      };
      const timer = setTimeout(() => finish('expired'), Math.max(0, waitMs));
      const closed = () => finish('written');
      const aborted = () => finish('cut');
      this.wrote = () => finish('written');
      socket.once('close', closed);
      cut.addEventListener('abort', aborted, { once: true });
    });
  }
}
