// A WebSocket as the live fronts' server side uses it (JobSocket, StreamedMessage), for unit
// tests: what was sent, its unread bytes as the test sets them, and fragments written as the
// test's client reads them.
import { EventEmitter } from 'node:events';

/** A fragment's callback once called: the fragment written. */
export const noop = (): void => {};

/** A WebSocket as JobSocket uses it: open, its unread bytes as set, what was sent and closed. */
export class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  readonly sent: string[] = [];
  /** Fragments of a message (sent with `fin`), each with its callback: the fragment written. */
  readonly fragments: { data: Buffer; fin: boolean; written: () => void }[] = [];
  readonly closes: number[] = [];
  terminated = false;
  send(data: string | Buffer, options?: { fin?: boolean }, written: () => void = () => {}): void {
    this.bufferedAmount += data.length;
    if (options?.fin === undefined) this.sent.push(String(data));
    else this.fragments.push({ data: Buffer.from(data), fin: options.fin, written });
  }
  close(code: number): void {
    this.closes.push(code);
    this.readyState = 2; // CLOSING, as ws sets it
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }
  /** The client reads one more fragment: it goes to the kernel (its callback), leaving the socket. */
  readOne(): boolean {
    const next = this.fragments.find((f) => f.written !== noop);
    if (!next) return false;
    this.bufferedAmount -= next.data.length;
    const { written } = next;
    next.written = noop;
    written();
    return true;
  }
  /** The client goes: the socket closes under its sender (ws: CLOSED, then `close`). */
  gone(): void {
    this.readyState = 3;
    this.emit('close');
  }
}
