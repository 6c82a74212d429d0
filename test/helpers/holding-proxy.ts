// A TCP proxy in front of a Redis that holds what a client sends on a connection, from the first
// bytes `holdFrom` picks (a command, a connection's name), until release(): that connection's
// commands from then on reach Redis at the release, in order. Its other connections, and what
// Redis sends, pass at once.
import net from 'node:net';

export interface HoldingProxy {
  port: number;
  /** Sends what is held, and holds nothing from now on. */
  release(): void;
  close(): Promise<void>;
}

export async function startHoldingProxy(target: { host: string; port: number }, holdFrom: (clientBytes: Buffer) => boolean): Promise<HoldingProxy> {
  const sockets = new Set<net.Socket>();
  /** Each held connection's upstream and its bytes, until the release. */
  const held = new Map<net.Socket, Buffer[]>();
  let released = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const pair = [client, upstream];
    const end = () => {
      for (const socket of pair) {
        socket.destroy();
        sockets.delete(socket);
      }
      held.delete(upstream);
    };
    for (const socket of pair) {
      sockets.add(socket);
      socket.on('error', end);
      socket.on('close', end);
    }
    client.on('data', (chunk: Buffer) => {
      if (!released && !held.has(upstream) && holdFrom(chunk)) held.set(upstream, []);
      const holding = held.get(upstream);
      if (holding) holding.push(chunk);
      else upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    release: () => {
      released = true;
      for (const [upstream, chunks] of held) for (const chunk of chunks) upstream.write(chunk);
      held.clear();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
