// A network link that a test can cut: a TCP proxy on a free loopback port in front of a server
// (a test's Redis), whose cut passes nothing either way and closes nothing, as a cable pulled, a
// link down or a firewall dropping packets does: both ends keep their connections, and hear
// nothing. Bytes sent meanwhile are held and delivered, in order, when the link is restored, as
// TCP's retransmission delivers them once a real link is back; a connection made during the cut
// gets no further than its TCP handshake (the kernel's: a real cut would drop the SYN, which
// ioredis sees the same way, a connection that never becomes ready). Connections' ends are held
// likewise. No namespace, no root: the tests of partitions need only this.
import net from 'node:net';

export interface CuttableLink {
  /** The proxy's port on 127.0.0.1. */
  port: number;
  /** `redis://127.0.0.1:<port>` (for a Redis behind it). */
  url: string;
  /** Whether the link is cut now. */
  readonly isCut: boolean;
  /** Connections made through it so far (for a test that checks its clients reconnected). */
  readonly connections: number;
  /** Stops passing anything, either way, on every connection and on those made from now on. */
  cut(): void;
  /** Passes again what was held, then everything as it comes. */
  restore(): void;
  /** Closes every connection and the proxy. */
  close(): Promise<void>;
}

/** One direction of a connection: holds what comes while the link is cut. */
class Direction {
  private held: Buffer[] = [];
  private ended = false;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly isCut: () => boolean,
  ) {
    from.on('data', (chunk: Buffer) => (isCut() ? this.held.push(chunk) : to.write(chunk)));
    from.on('end', () => {
      this.ended = true;
      if (!isCut()) to.end();
    });
  }

  /** The link is back: what was held goes on, and so does a reset or an end that came meanwhile. */
  restored(): void {
    if (this.from.destroyed && !this.from.readableEnded) {
      this.to.destroy();
      return;
    }
    for (const chunk of this.held) this.to.write(chunk);
    this.held = [];
    if (this.ended) this.to.end();
  }
}

export async function startCuttableLink(targetPort: number, targetHost = '127.0.0.1'): Promise<CuttableLink> {
  let isCut = false;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const directions = new Set<Direction>();
  /** Made during a cut: connected upstream once the link is restored. */
  const waiting: (() => void)[] = [];
  const server = net.createServer((client) => {
    connections++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    const connect = () => {
      if (client.destroyed) return;
      const upstream = net.connect(targetPort, targetHost);
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      // A reset (destroy) of either end passes at once only while the link is up: in a cut the
      // other end hears nothing, as it would not.
      client.on('close', () => !isCut && upstream.destroy());
      upstream.on('close', () => !isCut && client.destroy());
      const pair = [new Direction(client, upstream, () => isCut), new Direction(upstream, client, () => isCut)];
      for (const direction of pair) directions.add(direction);
      upstream.on('close', () => client.destroyed && pair.forEach((direction) => directions.delete(direction)));
      client.on('close', () => upstream.destroyed && pair.forEach((direction) => directions.delete(direction)));
    };
    if (isCut) {
      // Read nothing from it meanwhile: its bytes wait in the kernel, then flow once connected.
      client.pause();
      waiting.push(() => {
        connect();
        client.resume();
      });
    } else connect();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get isCut() {
      return isCut;
    },
    get connections() {
      return connections;
    },
    cut: () => {
      isCut = true;
    },
    restore: () => {
      isCut = false;
      for (const direction of [...directions]) direction.restored();
      for (const connect of waiting.splice(0)) connect();
    },
    close: async () => {
      isCut = false;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
