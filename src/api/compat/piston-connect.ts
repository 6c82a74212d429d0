// Piston v2's interactive WebSocket, /api/v2/connect (engineer-man/piston api/src/api/v2.js,
// router.ws('/connect')), over our live jobs: the same messages and close codes. The client sends
// `init` (an execute body) within a second, then `data` on stdin and `signal`s; it hears
// `runtime`, each stage's `stage`, its output as `data` and its end as `exit`, and the socket
// closes with 4999 "Job Completed". Unlike Piston's, a `signal` ends the run as a cancel does (the
// whole container is killed) whatever the signal but those that would not end a process
// (SIGWINCH, ...: ignored), and a compile's output comes when it has ended.
import { constants } from 'node:os';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { liveJobProblem } from '../../executor/check.js';
import type { Runtime } from '../../images/types.js';
import { pistonVersion } from './piston-runtimes.js';
import type { JobRequest, LiveEvent, LiveExit, LiveStage } from '../../jobs/model.js';
import { JobSocket, LIVE_SEND_BUFFER_BYTES, StreamText, type LiveFrontOptions } from '../live-socket.js';
import { admissionMessage, admissionProblem } from '../submission.js';
import { pistonFields, PistonRequestError, translatePistonExecute } from './piston-request.js';

/** Piston closes a socket that sent no `init` this long after it opened. */
const INIT_TIMEOUT_MS = 1000;

/** Piston's close codes (v2.js). */
const CLOSE = {
  alreadyInitialized: [4000, 'Already Initialized'],
  initTimeout: [4001, 'Initialization Timeout'],
  notifiedError: [4002, 'Notified Error'],
  notInitialized: [4003, 'Not yet initialized'],
  stdinOnly: [4004, 'Can only write to stdin'],
  invalidSignal: [4005, 'Invalid signal'],
  completed: [4999, 'Job Completed'],
} as const;

/** A stage's `exit` message as Piston sends it: `code`, and `signal` by name. A signal cancels the
 * run (onMessage); one that came before the program began ends it with no signal of its own, yet
 * the client was told its process got a kill: SIGKILL, as for a run the cancel killed. */
export function pistonExit(stage: LiveStage, exit: LiveExit): { type: 'exit'; stage: LiveStage; code: number | null; signal: string | null } {
  return { type: 'exit', stage, code: exit.exitCode, signal: exit.signalName ?? (exit.verdict === 'cancelled' ? 'SIGKILL' : null) };
}

const SIGNALS: ReadonlySet<string> = new Set(Object.keys(constants.signals));
/** Signals whose default action leaves a process running (ignored, or continue): sent to the
 * run, they would not end it, so they are not taken as a cancel. */
const HARMLESS_SIGNALS: ReadonlySet<string> = new Set(['SIGCHLD', 'SIGCONT', 'SIGURG', 'SIGWINCH']);

export function pistonConnect(socket: WebSocket, request: FastifyRequest, options: LiveFrontOptions): void {
  const { jobs, runtimes, policy } = options;
  const { maxStdinBytes } = options.liveSockets;
  let initialized = false;
  const text = new StreamText();
  const live: JobSocket = new JobSocket(socket, request, options.liveSockets, INIT_TIMEOUT_MS, {
    message: (message) => onMessage(message),
    notJson: (error) => void notify(error.message),
    tooSlow: () => void notify(`more than ${LIVE_SEND_BUFFER_BYTES} bytes were left unread: read the socket as the program writes`),
    shuttingDown: () => notify('the server is stopping: the job is cancelled'),
    // Piston's deadline is for `init` itself, which a refused init has sent.
    noSubmit: () => void (initialized || close(CLOSE.initTimeout)),
  });
  const { job } = live;

  function close([code, reason]: readonly [number, string]): Promise<void> {
    return live.end(code, reason);
  }
  /** Piston's error path: the message over the socket (a close reason holds 123 bytes at most), then 4002. */
  function notify(message: string): Promise<void> {
    return live.end(CLOSE.notifiedError[0], CLOSE.notifiedError[1], { type: 'error', message });
  }

  const onEvent = (event: LiveEvent): void => {
    switch (event.type) {
      case 'started':
        return;
      case 'stage':
        live.send({ type: 'stage', stage: event.stage });
        return;
      case 'output': {
        const data = text.text(event.stage, event.stream, event.data);
        if (data !== '') live.send({ type: 'data', stream: event.stream, data });
        return;
      }
      case 'exit':
        for (const { stream, text: rest } of text.rest(event.stage)) live.send({ type: 'data', stream, data: rest });
        live.send(pistonExit(event.stage, event.exit));
        return;
      case 'inputLost':
        void notify('stdin could not be passed on (Redis unreachable, or the worker gone): the job is cancelled, its input having a gap');
        return;
      case 'end':
        if (event.record?.status === 'failed') void notify(event.record.failure?.message ?? 'the job failed');
        else if (!event.record) void notify('the job disappeared before it finished');
        else void close(CLOSE.completed);
    }
  };

  const init = (message: Record<string, unknown>): void => {
    let jobRequest: JobRequest;
    let runtime: Runtime;
    try {
      const translated = translatePistonExecute(message, runtimes);
      runtime = translated.runtime;
      // Piston's interactive jobs take their stdin from `data` messages alone.
      jobRequest = { ...translated.request, stdinBase64: '' };
      const refused = admissionProblem(jobRequest, runtime, policy, pistonFields);
      const problem = refused ? admissionMessage(refused) : liveJobProblem(jobRequest);
      if (problem !== undefined) throw new PistonRequestError(problem);
    } catch (error) {
      // Thrown from a socket's message handler, anything else would end the API process.
      if (!(error instanceof PistonRequestError)) request.log.error({ err: error }, 'piston connect: unexpected error');
      void notify(error instanceof PistonRequestError ? error.message : 'internal error');
      return;
    }
    job.submit(jobs, jobRequest, onEvent, {
      accepted: () => live.send({ type: 'runtime', language: runtime.language, version: pistonVersion(runtime) }),
      refused: (error) => void notify((error as Error).message),
    });
  };

  function onMessage(parsed: unknown): void {
    const message = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
    switch (message.type) {
      case 'init':
        if (initialized) {
          void close(CLOSE.alreadyInitialized);
          return;
        }
        initialized = true;
        init(message);
        return;
      case 'data':
        if (!initialized) void close(CLOSE.notInitialized);
        else if (message.stream !== 'stdin') void close(CLOSE.stdinOnly);
        else if (typeof message.data !== 'string') void notify('data must be a string');
        else if (job.write(Buffer.from(message.data, 'utf8')) === 'too_large') void notify(`stdin is limited to ${maxStdinBytes} bytes`);
        return;
      case 'signal':
        if (!initialized) void close(CLOSE.notInitialized);
        else if (typeof message.signal !== 'string' || !SIGNALS.has(message.signal)) void close(CLOSE.invalidSignal);
        // A terminal's resize (SIGWINCH) and the like change nothing for a process by default.
        else if (!HARMLESS_SIGNALS.has(message.signal)) job.cancel()?.catch((error: unknown) => void notify((error as Error).message));
        return;
      default:
      // Piston ignores other messages.
    }
  }
}
