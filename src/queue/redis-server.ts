// A private redis-server on a loopback port: what `cellblock start` uses when no Redis URL is
// configured, and what every test that needs Redis starts for itself. Persistence is on (AOF) and
// eviction is off, as BullMQ requires. Redis write()s every command to the AOF before it replies,
// so a crash of redis-server or of any cellblock process loses nothing that was accepted; fsync
// ("everysec" by default) only decides what a crash of the machine itself can lose: up to the last
// second with "everysec", nothing with "always", which costs a disk flush per write (~1.3 ms vs
// ~0.13 ms per write under load on the reference machine).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { dyingWithParent } from '../parent-death.js';

/** Redis's appendfsync policies that keep an accepted job across a redis-server crash. */
export const REDIS_APPEND_FSYNC_POLICIES = ['always', 'everysec'] as const;
export type RedisAppendFsync = (typeof REDIS_APPEND_FSYNC_POLICIES)[number];

export const DEFAULT_REDIS_APPEND_FSYNC: RedisAppendFsync = 'everysec';

export interface RedisServerOptions {
  /** Directory for the AOF and dump files; must exist. */
  dataDir: string;
  /** When the AOF is flushed to disk; DEFAULT_REDIS_APPEND_FSYNC when absent. */
  appendFsync?: RedisAppendFsync;
  /** Port on 127.0.0.1; a free one when absent. */
  port?: number;
  /** Ports a free one must not be: ports other servers of ours are about to bind (`cellblock
   * start`'s API, which binds its port once Redis is up), free until then. */
  avoidPorts?: readonly number[];
  /** Called with each line redis-server prints (for logs); quiet when absent. */
  onLog?: (line: string) => void;
  /** A descriptor the server inherits (as its fd 3) and so holds until it exits: the caller's
   * flock on the data dir (`cellblock start`'s), which then lasts while the server may still
   * write its files, after the caller itself has gone. Such a server cannot be restarted. */
  heldFd?: number;
}

export interface RedisServer {
  url: string;
  port: number;
  readonly pid: number | undefined;
  /** SIGTERM, then wait for it to exit (it writes its data first). */
  stop(): Promise<void>;
  /** Stop, then start again on the same port and data. */
  restart(): Promise<void>;
}

export class RedisServerError extends Error {
  override readonly name = 'RedisServerError';
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const FREE_PORT_ATTEMPTS = 100;

/** A free loopback port that is none of `avoid` (probe: how a free port is found). */
export async function freeLoopbackPortExcept(avoid: readonly number[], probe: () => Promise<number> = freeLoopbackPort): Promise<number> {
  for (let attempt = 0; attempt < FREE_PORT_ATTEMPTS; attempt++) {
    const port = await probe();
    if (!avoid.includes(port)) return port;
  }
  throw new RedisServerError(`no free loopback port other than ${avoid.join(', ')} in ${FREE_PORT_ATTEMPTS} attempts`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

function redisArgs(port: number, options: RedisServerOptions): string[] {
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', options.dataDir,
    '--appendonly', 'yes',
    '--appendfsync', options.appendFsync ?? DEFAULT_REDIS_APPEND_FSYNC,
    '--save', '',
    '--maxmemory-policy', 'noeviction',
    '--daemonize', 'no',
    '--logfile', '',
  ];
}

function launch(port: number, options: RedisServerOptions): ChildProcess {
  const args = redisArgs(port, options);
  // The server dies with us, so that a crashed test or service never leaves one behind.
  const command = dyingWithParent('TERM', 'redis-server', args);
  // Its own process group: a terminal's Ctrl-C reaches the foreground group (`cellblock start`, its
  // workers), and Redis must outlive their shutdown, which stores the results of the jobs in
  // flight; it is stopped last, by stop() (or dies with us, above).
  const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
  if (options.heldFd !== undefined) stdio.push(options.heldFd);
  const child = spawn(command.file, command.args, { stdio, detached: true });
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) options.onLog?.(line);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}

async function waitUntilAnswering(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new RedisServerError(`redis-server on port ${port} exited at start (${child.exitCode ?? child.signalCode})`);
    }
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new RedisServerError(`redis-server on port ${port} did not answer within ${START_TIMEOUT_MS} ms`);
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const avoid = options.avoidPorts ?? [];
  let port = options.port ?? (await freeLoopbackPortExcept(avoid));
  let child: ChildProcess;
  for (let attempt = 0; ; attempt++) {
    child = launch(port, options);
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (error) => reject(new RedisServerError(`cannot run redis-server: ${error.message} (run scripts/setup.sh)`))),
    );
    try {
      await Promise.race([waitUntilAnswering(port, child), spawnError]);
      break;
    } catch (error) {
      await terminate(child);
      // Another process may have taken the free port between our probe and redis-server's bind.
      if (options.port !== undefined || attempt >= 3 || !(error instanceof RedisServerError) || /cannot run/.test(error.message)) {
        throw error;
      }
      port = await freeLoopbackPortExcept(avoid);
    }
  }
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid;
    },
    stop: () => terminate(child),
    restart: async () => {
      // The held descriptor went to the first server; the caller may have closed its own since.
      if (options.heldFd !== undefined) throw new RedisServerError('a server given heldFd cannot be restarted: its descriptor went to the first one');
      await terminate(child);
      child = launch(port, options);
      await waitUntilAnswering(port, child);
    },
  };
  return server;
}
