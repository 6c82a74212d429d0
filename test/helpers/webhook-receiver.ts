// An HTTP server on a free loopback port that records every request it gets (its method, its body,
// parsed as JSON where it is JSON, and its headers) and answers each with the status `answer` gives for its
// number (1 for the first), at once or when its promise resolves; `hang` leaves that request
// unanswered until the server closes. `mostOpen` is the most requests it held unanswered at once.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { until } from './until.js';

export interface ReceivedRequest {
  method: string;
  body: any;
  headers: http.IncomingHttpHeaders;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/done` (any path reaches it) */
  url: string;
  received: ReceivedRequest[];
  readonly mostOpen: number;
  close(): void;
}

type Answer = number | 'hang';

export async function startWebhookReceiver(answer: (requestNumber: number) => Answer | Promise<Answer> = () => 204): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  let open = 0;
  let mostOpen = 0;
  const server = http.createServer((request, response) => {
    mostOpen = Math.max(mostOpen, ++open);
    response.once('close', () => open--);
    // Decoded whole: a character split between two chunks would read as two U+FFFD.
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let parsed: unknown = body;
      try {
        parsed = JSON.parse(body);
      } catch {
        // kept as text: the test says what it expected
      }
      received.push({ method: request.method ?? '', body: parsed, headers: request.headers });
      void Promise.resolve(answer(received.length)).then((status) => {
        if (status !== 'hang') response.writeHead(status).end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/done`,
    received,
    get mostOpen() {
      return mostOpen;
    },
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** A receiver for the notifier's memory budget tests: it answers each delivery only once every
 * job `jobUrls()` names reads `done` (at most 8 s), and half a second later, time for another
 * job's delivery to arrive where the budget lets it: `mostOpen` then tells how many the notifier
 * had under way at once. */
export async function startReceiverHeldUntilDone(jobUrls: () => string[]): Promise<WebhookReceiver> {
  const allDone = async () => (await Promise.all(jobUrls().map(async (url) => ((await (await fetch(url)).json()) as { status: string }).status))).every((status) => status === 'done');
  return startWebhookReceiver(async () => {
    await until(allDone, 8000, 50, 'every job done').catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 500));
    return 204;
  });
}
