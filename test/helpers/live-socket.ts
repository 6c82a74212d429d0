// A WebSocket client for the live-job tests: every message kept in order, and waits for the next
// one that matches, for the socket's close and its code.
import { WebSocket } from 'ws';

export interface LiveSocket {
  readonly messages: Record<string, any>[];
  send(message: unknown): void;
  /** The first message (from `from` on) that `match` accepts; rejects after `timeoutMs`. */
  next(match: (message: Record<string, any>) => boolean, timeoutMs?: number, from?: number): Promise<Record<string, any>>;
  /** Resolves once a stream's output so far (the data of `type` messages: `output` on /v1, `data`
   * on Piston's) holds `text`: chunks split where the program's writes and the pipe's reads fell. */
  outputHolds(text: string, options?: { type?: string; stream?: string; timeoutMs?: number }): Promise<unknown>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export async function openLiveSocket(url: string): Promise<LiveSocket> {
  const socket = new WebSocket(url);
  const messages: Record<string, any>[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (raw) => {
    messages.push(JSON.parse(raw.toString()) as Record<string, any>);
    for (const wake of waiters) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const wake of waiters) wake();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const output = (type: string, stream: string) =>
    messages
      .filter((m) => m.type === type && m.stream === stream)
      .map((m) => m.data)
      .join('');
  const live: LiveSocket = {
    messages,
    send: (message) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next: (match, timeoutMs = 30_000, from = 0) =>
      new Promise((resolve, reject) => {
        const look = () => {
          const found = messages.slice(from).find(match);
          if (found) {
            done();
            resolve(found);
          } else if (socket.readyState === WebSocket.CLOSED) {
            done();
            reject(new Error(`socket closed without the message; got ${JSON.stringify(messages)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no such message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(look);
        };
        waiters.add(look);
        look();
      }),
    outputHolds: (text, { type = 'output', stream = 'stdout', timeoutMs } = {}) => live.next(() => output(type, stream).includes(text), timeoutMs),
    closed,
    close: () => socket.close(),
  };
  return live;
}
