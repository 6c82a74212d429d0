// Process-level plumbing shared by the commands: a pino logger, one orderly shutdown on
// SIGTERM/SIGINT (a second signal exits at once, but for a supervised worker), and stop requests
// during start-up.
import pino, { type Logger } from 'pino';
import { onRedisRefusal, type RedisRefusal } from '../queue/connection.js';
import { evictionMessage } from '../queue/redis-health.js';

/** argv marker of a supervised child (`cellblock worker --single`): run one worker in this
 * process. The one argument a service command takes, and only from its supervisor. */
export const SINGLE_WORKER_FLAG = '--single';

export function createLogger(level: string, role: string): Logger {
  const logger = pino({ level, base: { service: 'cellblock', role, pid: process.pid } });
  routeBullmqWarnings(logger);
  return logger;
}

/** BullMQ's warnings of the Redis it connects to, which it writes as plain text with console.warn,
 * once per connection it makes (a dozen and more a process): an eviction policy other than
 * noeviction (which the process refuses, in its own line: connection.ts), a Redis older than it
 * recommends. */
const BULLMQ_WARNING = /^(IMPORTANT! Eviction policy is|It is highly recommended to use a minimum Redis version)/;

/** Turns BullMQ's console warnings into one log line each (at warn, the text in `bullmq`), the
 * same text once per process; any other console.warn is left as it is. */
function routeBullmqWarnings(logger: Logger): void {
  const said = new Set<string>();
  const consoleWarn = console.warn.bind(console);
  console.warn = (...args: unknown[]) => {
    const text = args.map(String).join(' ').replace(/\s+/g, ' ').trim();
    if (!BULLMQ_WARNING.test(text)) return consoleWarn(...args);
    if (said.has(text)) return;
    said.add(text);
    logger.warn({ bullmq: text }, 'BullMQ warns of the Redis it uses');
  };
}

/** `supervised`: a worker process its supervisor forked, which stops on the supervisor's SIGTERM.
 * Ctrl-C at a terminal sends SIGINT to the whole foreground process group, the supervisor and its
 * workers alike, and the supervisor then passes its own stop on as SIGTERM: taken as a second
 * signal, that would end the worker's running jobs at once. Such a worker leaves SIGINT to its
 * supervisor, and takes a SIGTERM once stopping as the same stop: a service manager's stop
 * (systemd's default KillMode=control-group) signals every process of the service at once, so
 * the supervisor's SIGTERM comes second. */
export interface ShutdownOptions {
  supervised?: boolean;
  /** The start-up's guard: ended (StartupGuard.done) once this process's handlers are armed, so
   * that no signal falls between the two, and a stop it took as start-up ended is acted on. */
  startup?: StartupGuard;
  /** A second signal, or a failed shutdown, exits at once: first this (a supervisor kills its
   * workers, which would otherwise stop on in order as orphans after the command has returned). */
  beforeForcedExit?: () => void;
}

/** Returned by onShutdown: the same orderly stop, for a failure the process cannot run on after
 * (`start`'s private Redis that keeps dying): `cause` is logged in place of a signal, and the
 * process exits with `exitCode` once stopped (a stop already under way goes on, to that exit
 * code); a signal that comes meanwhile is a second signal. */
export type FailureStop = (cause: string, exitCode: number) => void;

export function onShutdown(logger: Logger, shutdown: (signal: string) => Promise<void>, options: ShutdownOptions = {}): FailureStop {
  let stopping = false;
  let exitCode = 0;
  const handle = (signal: string) => {
    if (stopping && options.supervised) {
      logger.info({ signal }, 'already stopping: the signal changes nothing');
      return;
    }
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      options.beforeForcedExit?.();
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    shutdown(signal).then(
      () => process.exit(exitCode),
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        options.beforeForcedExit?.();
        process.exit(1);
      },
    );
  };
  const leaveSigint = () => logger.info('SIGINT: left to the supervisor, whose SIGTERM stops this worker');
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', options.supervised ? leaveSigint : () => handle('SIGINT'));
  // Armed before the guard goes: removing its listeners first would leave the signals at
  // their default action (death) for a moment. A stop it took is taken as if it came now.
  const pendingStop = options.startup?.done();
  if (pendingStop === 'SIGINT' && options.supervised) leaveSigint();
  else if (pendingStop !== undefined) handle(pendingStop);
  return (cause, failedExitCode) => {
    exitCode = failedExitCode;
    if (stopping) logger.error({ cause }, 'failed while stopping');
    else handle(cause);
  };
}

/** Exit status of a process stopped because Redis refused a setting (connection.ts's RedisRefusal:
 * the database CELLBLOCK_REDIS_URL names, or its login at start; or Redis evicts keys):
 * sysexits.h's EX_CONFIG, which a supervisor does not restart (superviseWorkers; systemd's
 * `RestartPreventExitStatus=78`): started again, it would be refused again. */
export const EXIT_SETTING_REFUSED = 78;

/** The one line that says what Redis refused, naming the variable. */
function refusalLine(refusal: RedisRefusal): string {
  switch (refusal.kind) {
    case 'database':
      return `CELLBLOCK_REDIS_URL names database ${refusal.database}, which Redis refuses (${refusal.answer})`;
    case 'login':
      return `Redis refuses the login of CELLBLOCK_REDIS_URL (${refusal.answer}): check the URL's user and password`;
    case 'eviction':
      return evictionMessage(refusal.answer);
  }
}

export interface RefusalWatch {
  /** The process runs: a refusal from now on is `stop`ped (onShutdown's FailureStop) in order. */
  running(stop: FailureStop): void;
  /** Redis refused a setting of a worker process this one supervises (superviseWorkers's
   * onSettingRefused; that worker said which): this process stops too, in order, with
   * EXIT_SETTING_REFUSED, at once if `running` was called, else as it is called (a refusal during
   * the API's start-up is acted on once it can stop in order). */
  workerRefused(): void;
  /** Whether a refusal of this process's own came (and was said). */
  readonly refused: boolean;
}

/**
 * Stops the process once Redis refuses a setting (connection.ts's onRedisRefusal: the database
 * CELLBLOCK_REDIS_URL names, whose connections are closed by then, none having run a command; or
 * the URL's login, before the process ran: connection.ts hasRun), saying so in one line on
 * stderr: in order once `running`; while it starts, by `duringStartup` (a worker aborts its
 * start-up, releasing what it prepared), else at once.
 */
export function watchRedisRefusal(logger: Logger, duringStartup?: () => void): RefusalWatch {
  let stop: FailureStop | undefined;
  let refused = false;
  let aWorkerRefused = false;
  const stopForWorker = () => stop?.('redis refused a setting of a worker process', EXIT_SETTING_REFUSED);
  onRedisRefusal((refusal) => {
    refused = true;
    const line = refusalLine(refusal);
    logger.fatal({ refused: refusal.kind, answer: refusal.answer, database: refusal.database }, line);
    process.stderr.write(`cellblock: ${line}\n`);
    if (stop) stop(refusal.kind === 'eviction' ? 'redis evicts keys' : `redis refused the ${refusal.kind}`, EXIT_SETTING_REFUSED);
    else if (duringStartup) duringStartup();
    else process.exit(EXIT_SETTING_REFUSED);
  });
  return {
    running: (failureStop) => {
      stop = failureStop;
      if (aWorkerRefused) stopForWorker();
    },
    workerRefused: () => {
      aWorkerRefused = true;
      stopForWorker();
    },
    get refused() {
      return refused;
    },
  };
}

export interface StartupGuard {
  /** Aborted when the process is asked to stop before it is ready. */
  readonly signal: AbortSignal;
  /** Aborts `signal` for a reason of the process's own (no signal to take once onShutdown is armed). */
  abort(): void;
  /** Start-up is over: signals go to onShutdown's handler from now on (onShutdown calls this
   * once its own are armed: give it the guard). Returns the stop asked for during start-up, if
   * any (SIGTERM for a supervisor gone): one that came after the start-up it aborted had already
   * finished (a worker that became ready just before it) would otherwise be lost, and the
   * process would never stop. */
  done(): NodeJS.Signals | undefined;
}

/**
 * Stop requests that arrive while a process starts — SIGTERM, SIGINT, and for a child forked by
 * a supervisor the supervisor's death (its IPC channel closes, even when it was SIGKILLed) —
 * abort `signal`, so that a start-up waiting on an absent Redis can be abandoned cleanly. A
 * supervisor that dies later sends this process a SIGTERM: the orderly shutdown.
 */
export function guardStartup(): StartupGuard {
  const controller = new AbortController();
  let starting = true;
  let asked: NodeJS.Signals | undefined;
  const abort = (signal: NodeJS.Signals) => {
    if (asked !== 'SIGTERM') asked = signal;
    controller.abort();
  };
  // `on`, not `once`: a second signal during start-up (a service manager's and a supervisor's
  // SIGTERM) must not meet Node's default action.
  process.on('SIGTERM', abort);
  process.on('SIGINT', abort);
  if (process.send !== undefined) {
    if (!process.connected) abort('SIGTERM');
    process.once('disconnect', () => (starting ? abort('SIGTERM') : process.kill(process.pid, 'SIGTERM')));
  }
  return {
    signal: controller.signal,
    abort: () => controller.abort(),
    done: () => {
      starting = false;
      process.off('SIGTERM', abort);
      process.off('SIGINT', abort);
      return asked;
    },
  };
}
