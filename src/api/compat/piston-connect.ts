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
import type { JobRequest, LiveEvent } from '../../jobs/model.js';
import { LIVE_SEND_BUFFER_BYTES, liveClientOf, SocketJob, StreamText, type LiveSockets } from '../live-socket.js';
import type { JobService } from '../service.js';
import { admissionProblem, type SubmissionPolicy } from '../submission.js';
import { PistonRequestError, translatePistonExecute } from './piston-request.js';

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

const SIGNALS: ReadonlySet<string> = new Set(Object.keys(constants.signals));
/** Signals whose default action leaves a process running (ignored, or continue): sent to the
 * run, they would not end it, so they are not taken as a cancel. */
const HARMLESS_SIGNALS: ReadonlySet<string> = new Set(['SIGCHLD', 'SIGCONT', 'SIGURG', 'SIGWINCH']);

export interface PistonConnectOptions {
  jobs: JobService;
  runtimes: Runtime[];
  policy: SubmissionPolicy;
  maxStdinBytes: number;
  liveSockets: LiveSockets;
}

export function pistonConnect(socket: WebSocket, request: FastifyRequest, options: PistonConnectOptions): void {
  const { jobs, runtimes, policy, maxStdinBytes } = options;
  let initialized = false;
  const socketJob = new SocketJob(request.log, maxStdinBytes);
  let over = false;
  const text = new StreamText();

  const close = ([code, reason]: readonly [number, string]): Promise<void> => {
    if (over) return Promise.resolve();
    over = true;
    socket.close(code, reason);
    return socketJob.abandon();
  };
  // Piston's error path: the message over the socket (a close reason holds 123 bytes at most), then 4002.
  const notify = (message: string): Promise<void> => {
    if (over) return Promise.resolve();
    send({ type: 'error', message });
    return close(CLOSE.notifiedError);
  };
  const send = (message: Record<string, unknown>): void => {
    if (socket.readyState !== socket.OPEN) return;
    socket.send(JSON.stringify(message));
    if (!over && socket.bufferedAmount > LIVE_SEND_BUFFER_BYTES) void notify(`more than ${LIVE_SEND_BUFFER_BYTES} bytes were left unread: read the socket as the program writes`);
  };

  const onEvent = (event: LiveEvent): void => {
    switch (event.type) {
      case 'started':
        return;
      case 'stage':
        send({ type: 'stage', stage: event.stage });
        return;
      case 'output': {
        const data = text.text(event.stage, event.stream, event.data);
        if (data !== '') send({ type: 'data', stream: event.stream, data });
        return;
      }
      case 'exit':
        for (const { stream, text: rest } of text.rest(event.stage)) send({ type: 'data', stream, data: rest });
        send({ type: 'exit', stage: event.stage, code: event.exit.exitCode, signal: event.exit.signalName });
        return;
      case 'inputLost':
        void notify('stdin could not be passed on (Redis unreachable): the job is cancelled, its input having a gap');
        return;
      case 'end':
        socketJob.end();
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
      const problem = admissionProblem(jobRequest, runtime, policy) ?? liveJobProblem({ interactor: false, checker: false, stderrToStdout: jobRequest.stderrToStdout });
      if (problem !== undefined) throw new PistonRequestError(problem);
    } catch (error) {
      // Thrown from a socket's message handler, anything else would end the API process.
      if (!(error instanceof PistonRequestError)) request.log.error({ err: error }, 'piston connect: unexpected error');
      void notify(error instanceof PistonRequestError ? error.message : 'internal error');
      return;
    }
    socketJob.submit(jobs, jobRequest, onEvent, {
      socketEnded: () => over,
      accepted: () => send({ type: 'runtime', language: runtime.language, version: runtime.version }),
      refused: (error) => void notify((error as Error).message),
    });
  };

  const initTimer = setTimeout(() => {
    if (!initialized) void close(CLOSE.initTimeout);
  }, INIT_TIMEOUT_MS);
  const forget = options.liveSockets.add(liveClientOf(request), () => notify('the server is stopping: the job is cancelled'));

  socket.on('message', (raw, isBinary) => {
    if (over) return;
    let message: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse((isBinary ? Buffer.from(raw as Buffer) : raw).toString());
      message = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
    } catch (error) {
      void notify((error as Error).message);
      return;
    }
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
        else if (socketJob.write(Buffer.from(message.data, 'utf8')) === 'too_large') void notify(`stdin is limited to ${maxStdinBytes} bytes`);
        return;
      case 'signal':
        if (!initialized) void close(CLOSE.notInitialized);
        else if (typeof message.signal !== 'string' || !SIGNALS.has(message.signal)) void close(CLOSE.invalidSignal);
        // A terminal's resize (SIGWINCH) and the like change nothing for a process by default.
        else if (!HARMLESS_SIGNALS.has(message.signal)) socketJob.cancel()?.catch((error: unknown) => void notify((error as Error).message));
        return;
      default:
      // Piston ignores other messages.
    }
  });

  socket.on('close', () => {
    clearTimeout(initTimer);
    forget();
    if (!over) void socketJob.abandon();
    over = true;
  });
}
