// An HTTP server on a free loopback port that records every request it gets (its JSON body and
// headers) and answers each with the status `answer` gives for its number (1 for the first).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  body: any;
  headers: http.IncomingHttpHeaders;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/done` */
  url: string;
  received: ReceivedRequest[];
  close(): void;
}

export async function startWebhookReceiver(answer: (requestNumber: number) => number = () => 204): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  let requests = 0;
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      requests += 1;
      received.push({ body: JSON.parse(body), headers: request.headers });
      response.writeHead(answer(requests)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/done`,
    received,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
