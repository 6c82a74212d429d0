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
   * write its files, after the caller itself has gone. Such a server cannot be restart()ed (the
   * caller may have closed its own since); `supervise` hands it to each server it starts, so the
   * caller keeps it open while it supervises (`start` does, for its life). */
  heldFd?: number;
  /** Start the server again, on the same port and data dir, whenever it exits unasked (a crash, an
   * OOM kill, a kill by hand): Redis replays its append-only file, so every accepted job comes
   * back, and our ioredis connections reconnect by themselves. Without it the server stays dead:
   * no one else would start it, and the API would answer 503 for ever. */
  supervise?: RedisSupervision;
}

/** An unasked exit of a supervised server. */
export interface RedisExit {
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** How long it had run (ms). */
  ranMs: number;
  /** Its last lines of log, which say why when it could not start again. */
  lastLines: string[];
}

export interface RedisSupervision {
  /** It exited unasked, and is started again in `restartInMs`. */
  onExit(exit: RedisExit & { restartInMs: number }): void;
  /** Started again: it answers (after loading its data), `downMs` after it exited. */
  onRestarted(restarted: { pid: number | undefined; downMs: number }): void;
  /** It kept dying (once more than MAX_QUICK_REDIS_EXITS in a row, each within
   * HEALTHY_REDIS_RUN_MS of its start: its disk full, its files damaged), or its port was taken
   * while it was down: it is not started again. */
  onGiveUp(error: RedisServerError): void;
  /** Wait before the first restart (REDIS_RESTART_DELAY_MS when absent), doubled for each quick
   * exit in a row. A test makes it short. */
  restartDelayMs?: number;
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
/** A supervised server that exits is started again after this, doubled for each quick exit in a
 * row: short, since every API request and every job's progress waits for it; not at once, so that
 * a server that cannot start does not spin. (A `start` whose whole service a service manager
 * stops, its SIGTERM reaching every process, restarts its server too, then stops it last, once
 * its workers have stored what they could: README, "Under systemd".) */
export const REDIS_RESTART_DELAY_MS = 250;
/** A server that ran this long before it exited starts the count of quick exits afresh. */
export const HEALTHY_REDIS_RUN_MS = 60_000;
/** Quick exits in a row after which the next one gives a supervised server up (with the default
 * delay, after ~8 s of restarts: 0.25 + 0.5 + 1 + 2 + 4). One that cannot run (a full disk,
 * damaged files) would otherwise be restarted for ever while the service answers 503, a failure
 * no one hears of; given up, `cellblock start` exits non-zero. (A port another process took is
 * given up at once.) */
export const MAX_QUICK_REDIS_EXITS = 5;
/** Lines of the server's log kept to say why it could not start again. */
const LAST_LINES_KEPT = 8;

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

/** Whether the redis-server of process `pid` answers on the port, done loading: `INFO server`
 * names its process (anything else on the port, or a server of another's that took the port
 * between a death and a restart, is not ours: clients sent to it would queue jobs where no worker
 * of ours takes them), then PING says PONG (LOADING while it replays its append-only file). */
function answersAs(port: number, pid: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = Buffer.alloc(0);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    // Closed without a whole answer: another program on the port, which would otherwise leave
    // this waiting for ever.
    socket.once('close', () => done(false));
    socket.on('connect', () => socket.write('INFO server\r\nPING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      const header = /^\$(\d+)\r\n/.exec(answer.subarray(0, 32).toString('latin1'));
      // Not a bulk reply to INFO (an error, another protocol): not a server of ours that is ready.
      if (!header) return answer.includes('\r\n') || answer.length >= 32 ? done(false) : undefined;
      const infoEnd = header[0].length + Number(header[1]) + 2;
      const pingEnd = answer.indexOf('\r\n', infoEnd);
      if (pingEnd < 0) return;
      const info = answer.subarray(header[0].length, infoEnd - 2).toString('latin1');
      const ours = pid !== undefined && info.split('\r\n').includes(`process_id:${pid}`);
      done(ours && answer.subarray(infoEnd, pingEnd).toString('latin1') === '+PONG');
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

function launch(port: number, options: RedisServerOptions, onLine?: (line: string) => void): ChildProcess {
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
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      onLine?.(line);
      options.onLog?.(line);
    }
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

async function waitUntilAnswering(port: number, child: ChildProcess, lastLines: () => readonly string[]): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (hasExited(child)) {
      // Its own words (a damaged append-only file, a full disk), for the operator.
      const why = exitReason(lastLines());
      throw new RedisServerError(`redis-server on port ${port} exited at start (${child.exitCode ?? child.signalCode})${why ? `: ${why}` : ''}`);
    }
    if (await answersAs(port, child.pid)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new RedisServerError(`redis-server on port ${port} did not answer within ${START_TIMEOUT_MS} ms`);
}

async function terminate(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Rejects when `child` cannot be spawned at all (redis-server not installed, say). */
function spawnFailure(child: ChildProcess): Promise<never> {
  return new Promise<never>((_, reject) =>
    child.once('error', (error) => reject(new RedisServerError(`cannot run redis-server: ${error.message} (run scripts/setup.sh)`))),
  );
}

/** A server's log line without its prefix (pid, role, time, level). */
const REDIS_LOG_PREFIX = /^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [.\-*#] /;

/** Why a server stopped, in one line, from its last lines: its warnings (level `#`: "Could not
 * create server TCP listening socket ... Address already in use"), else its last line. */
export function exitReason(lastLines: readonly string[]): string {
  const warnings = lastLines.filter((line) => / # /.test(line));
  return (warnings.length > 0 ? warnings.slice(-2) : lastLines.slice(-1)).map((line) => line.replace(REDIS_LOG_PREFIX, '').trim()).join('; ');
}

/** The last lines a server printed (those of the server started last). */
class RecentLines {
  lines: string[] = [];
  readonly keep = (line: string) => {
    this.lines.push(line);
    if (this.lines.length > LAST_LINES_KEPT) this.lines.shift();
  };
}

export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const avoid = options.avoidPorts ?? [];
  let port = options.port ?? (await freeLoopbackPortExcept(avoid));
  const recent = new RecentLines();
  let child: ChildProcess;
  for (let attempt = 0; ; attempt++) {
    recent.lines = [];
    child = launch(port, options, recent.keep);
    try {
      await Promise.race([waitUntilAnswering(port, child, () => recent.lines), spawnFailure(child)]);
      break;
    } catch (error) {
      await terminate(child);
      // Another process may have taken the free port between our probe and redis-server's bind;
      // a server that said another reason (its data) would fail on any port.
      const otherReason = error instanceof RedisServerError && /exited at start \([^)]*\): /.test(error.message) && !/Address already in use/.test(error.message);
      if (options.port !== undefined || attempt >= 3 || !(error instanceof RedisServerError) || /cannot run/.test(error.message) || otherReason) {
        throw error;
      }
      port = await freeLoopbackPortExcept(avoid);
    }
  }
  const supervisor = options.supervise ? superviseServer(child, port, options, options.supervise, recent) : undefined;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return supervisor?.child().pid ?? child.pid;
    },
    stop: () => (supervisor ? supervisor.stop() : terminate(child)),
    restart: async () => {
      if (supervisor) throw new RedisServerError('a supervised server is restarted by its supervisor');
      // The held descriptor went to the first server; the caller may have closed its own since.
      if (options.heldFd !== undefined) throw new RedisServerError('a server given heldFd cannot be restarted: its descriptor went to the first one');
      await terminate(child);
      recent.lines = [];
      child = launch(port, options, recent.keep);
      await waitUntilAnswering(port, child, () => recent.lines);
    },
  };
  return server;
}

/** Restarts `first`, and each server after it, whenever it exits before stop(): see
 * RedisServerOptions.supervise. */
function superviseServer(first: ChildProcess, port: number, options: RedisServerOptions, supervision: RedisSupervision, recent: RecentLines) {
  const firstDelayMs = supervision.restartDelayMs ?? REDIS_RESTART_DELAY_MS;
  let child = first;
  let launchedAt = Date.now();
  let quickExits = 0;
  /** stop() was called, or the server was given up: no exit is restarted from then on. */
  let over = false;
  let pendingRestart: NodeJS.Timeout | undefined;
  /** A restart under way: its server launched, not yet answering. */
  let restarting: Promise<void> | undefined;

  const watch = (watched: ChildProcess) => {
    watched.once('exit', (code, signal) => void exitedUnasked(watched, code, signal));
  };

  const exitedUnasked = async (watched: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (over || watched !== child) return;
    const exitedAt = Date.now();
    // Its last lines (why it could not start) may still be in the pipe: read them first, but not
    // for long, since a fork of its own (an AOF rewrite) would hold the pipe open.
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 500);
      watched.once('close', () => resolve(clearTimeout(timer)));
    });
    if (over) return;
    const ranMs = exitedAt - launchedAt;
    quickExits = ranMs >= HEALTHY_REDIS_RUN_MS ? 1 : quickExits + 1;
    const exit: RedisExit = { pid: watched.pid, code, signal, ranMs, lastLines: [...recent.lines] };
    // The port taken meanwhile (another program bound it between the death and this restart): no
    // restart on it can be ours, and clients still reconnect to it. Given up at once.
    const portTaken = exit.lastLines.some((line) => line.includes('Address already in use'));
    if (quickExits > MAX_QUICK_REDIS_EXITS || portTaken) {
      over = true;
      const why = exitReason(exit.lastLines);
      supervision.onGiveUp(
        new RedisServerError(
          portTaken
            ? `the private redis-server's port ${port} was taken by another program while it was down (data in ${options.dataDir}); not starting it again`
            : `the private redis-server on port ${port} (data in ${options.dataDir}) exited ${quickExits} times in a row, each within ${HEALTHY_REDIS_RUN_MS / 1000} s of its start, the last with ${signal ?? `exit code ${code}`}${why ? `: ${why}` : ''}; not starting it again`,
        ),
      );
      return;
    }
    const restartInMs = firstDelayMs * 2 ** (quickExits - 1);
    supervision.onExit({ ...exit, restartInMs });
    pendingRestart = setTimeout(() => {
      pendingRestart = undefined;
      restarting = relaunch(exitedAt).finally(() => (restarting = undefined));
    }, restartInMs);
  };

  /** Starts the server again and reports it once it answers; an exit meanwhile is the watcher's
   * (the next restart, or giving up). No deadline: a server replaying a large append-only file
   * answers LOADING for as long as that takes, and killing it then would only start it over. */
  const relaunch = async (exitedAt: number) => {
    if (over) return;
    recent.lines = [];
    child = launch(port, options, recent.keep);
    launchedAt = Date.now();
    const launched = child;
    watch(launched);
    const cannotRun = spawnFailure(launched).catch((error: RedisServerError) => {
      // Not even spawned (its executable gone): no exit follows, and no restart could help.
      if (over || launched !== child) return;
      over = true;
      supervision.onGiveUp(error);
    });
    while (!over && launched === child && !hasExited(launched)) {
      if (await answersAs(port, launched.pid)) {
        supervision.onRestarted({ pid: launched.pid, downMs: Date.now() - exitedAt });
        return;
      }
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 50)), cannotRun]);
    }
  };

  watch(first);
  return {
    child: () => child,
    /** Stops the server, a restart under way included; an exit from now on is no crash. */
    stop: async () => {
      over = true;
      clearTimeout(pendingRestart);
      await restarting;
      await terminate(child);
    },
  };
}
