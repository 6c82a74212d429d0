// A private redis-server for one test file: a free loopback port, its own data dir (removed on
// stop), persistence on so that restart() keeps what was written.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { startRedisServer } from '../../src/queue/redis-server.js';

export interface TestRedis {
  url: string;
  port: number;
  /** Its AOF and dump files (a test may start a redis-server of its own on them, paused). */
  dataDir: string;
  /** The server's pid, while it runs. */
  readonly pid: number | undefined;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
  /** Stops and starts it again on the same port, with the same data. */
  restart(): Promise<void>;
  /** Stops it, keeping the data, so that a test can watch the service without Redis. */
  pause(): Promise<void>;
  /** Starts it again after pause(). */
  resume(): Promise<void>;
}

export async function start(port?: number): Promise<TestRedis> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cellblock-test-redis-'));
  const server = await startRedisServer(port === undefined ? { dataDir } : { dataDir, port });
  let running = true;
  return {
    url: server.url,
    port: server.port,
    dataDir,
    get pid() {
      return server.pid;
    },
    stop: async () => {
      await server.stop();
      running = false;
      await rm(dataDir, { recursive: true, force: true });
    },
    restart: () => server.restart(),
    pause: async () => {
      await server.stop();
      running = false;
    },
    resume: async () => {
      if (!running) await server.restart();
      running = true;
    },
  };
}

/** The clients of `admin`'s Redis but `admin` itself (CLIENT LIST): each one's name and last
 * command. */
export async function otherClients(admin: Redis): Promise<{ name: string; cmd: string }[]> {
  const own = String(await admin.client('ID'));
  return String(await admin.client('LIST'))
    .split('\n')
    .filter((line) => line && !line.startsWith(`id=${own} `))
    .map((line) => ({ name: /\bname=(\S*)/.exec(line)?.[1] ?? '', cmd: /\bcmd=(\S*)/.exec(line)?.[1] ?? '' }));
}
