// /v1/live: a live job over a WebSocket (docs/theory-of-operation.md, "Live runs"). The client
// submits one job, as POST /v1/jobs takes it, then writes its stdin while it runs and reads its
// output as the program writes it; the last message is the job's view, as GET /v1/jobs/:id shows
// it. Every refusal is an `error` message with the code and message an HTTP answer would carry,
// then the socket closes with 4000 + that HTTP status.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { isTerminalSize, liveJobProblem } from '../../executor/check.js';
import { isRecord } from '../../images/validate.js';
import type { LiveEvent } from '../../jobs/model.js';
import { liveTicketHolder } from '../auth.js';
import { ApiError, badRequest, prototypeKeyRefusal, toApiError } from '../errors.js';
import { jsonTextStream, STREAMED_JSON_MIN_CHARS, stringChars } from '../json-stream.js';
import { JobSocket, LIVE_SEND_BUFFER_BYTES, LIVE_SESSIONS_RETRY_AFTER_SECONDS, StreamText, type LiveFrontOptions, type SocketEnding } from '../live-socket.js';
import { presentJob, type OutputEncoding } from '../present.js';
import { LIVE_SOCKET_OPENED } from '../openapi.js';
import { ErrorBody, JobSubmission, LiveQuery, LiveTicketView, NoQuery } from '../schemas.js';
import { decodeBase64, toJobRequest } from '../submission.js';
import { validatorCompiler } from '../validator.js';

/** How long a client has, once connected, to send its `submit`. */
const LIVE_SUBMIT_TIMEOUT_MS = 10_000;
/** How long a live ticket is good for: a page's server hands it to the browser, which connects at
 * once; a ticket copied from a log or a history is spent or gone. */
const LIVE_TICKET_TTL_MS = 60_000;

/** POST /v1/jobs's check of its body (validator.ts): TypeBox's own Errors went through every item
 * of a list, however long (10^6 `{}` tests in a 4 MiB message: 3.7 s of event loop), where the
 * body's check refuses a list past its maxItems for its length. */
const submissionCheck = validatorCompiler({ schema: JobSubmission, httpPart: 'body', method: 'GET', url: '/v1/live' }) as (
  job: unknown,
) => { error: unknown[] } | { value: JobSubmission };

const TERMINAL_SIZE_SHAPE = '{"rows": integer, "cols": integer}, each 1-65535';

/** The `submit` message's job as a validation error fastify would make of a body, so that it reads
 * as POST /v1/jobs's 400 invalid_request does. */
function validationError(issues: unknown[]): Error {
  return Object.assign(new Error('invalid job'), { validation: issues, validationContext: 'job' });
}

export const liveRoutes: FastifyPluginAsyncTypebox<LiveFrontOptions> = async (app, options) => {
  app.post(
    '/live/tickets',
    {
      schema: {
        summary: 'A live ticket: one connection to a live socket without an API key header',
        description: `For browsers, which cannot set headers on a WebSocket: a page's server asks with its API key and hands the ticket to the page, which connects to GET /v1/live?ticket=... (or Piston's /api/v2/connect?ticket=...) within ${LIVE_TICKET_TTL_MS / 1000} s. The ticket stands for the key that asked (its rate limit and live socket cap), once.`,
        tags: ['jobs'],
        querystring: NoQuery,
        response: { 201: LiveTicketView, 400: ErrorBody, 415: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
      // No body: refused as every /v1 route refuses one it does not take (415 for one that is not
      // JSON, 400 invalid_request for JSON), not ignored. `{}`, which clients that always send
      // JSON send for a POST with nothing to say, says nothing: taken.
      preValidation: async (request) => {
        const body = request.body;
        if (body === undefined || body === '' || (isRecord(body) && Object.keys(body).length === 0)) return;
        const type = request.headers['content-type']?.split(';')[0]!.trim().toLowerCase();
        if (type !== 'application/json') throw new ApiError(415, 'unsupported_media_type', 'POST /v1/live/tickets takes no body (a /v1 body is application/json)');
        throw badRequest('invalid_request', 'POST /v1/live/tickets takes no body');
      },
    },
    async (request, reply) => {
      const ticket = await options.jobs.issueLiveTicket(liveTicketHolder(request), LIVE_TICKET_TTL_MS);
      return reply.code(201).send({ ticket, expiresInMs: LIVE_TICKET_TTL_MS });
    },
  );

  app.route({
    method: 'GET',
    url: '/live',
    schema: {
      summary: 'A live job over a WebSocket',
      description:
        'Upgrade to a WebSocket, send {"type": "submit", "job": <a submission as POST /v1/jobs takes it>, "terminal"?: {"rows", "cols"}}, then {"type": "stdin", "data"}, {"type": "stdinEnd"} and (with a terminal) {"type": "resize", "rows", "cols"} as the program runs; the server sends accepted, started, stage, output, exit and last done with the job. See the README, "Live jobs". A request without the upgrade is 426.',
      tags: ['jobs'],
      querystring: LiveQuery,
      response: { 400: ErrorBody, 426: ErrorBody, 429: ErrorBody, 503: ErrorBody },
    },
    config: { liveTicket: true, openapi: { responses: { 101: LIVE_SOCKET_OPENED } } },
    preHandler: async (request) => {
      // Only an upgrade opens a socket (a plain GET is answered 426 below).
      const refusal = request.ws ? await options.liveSockets.admit(request) : undefined;
      if (refusal) {
        const { maximum, setting } = refusal;
        throw new ApiError(429, 'too_many_live_sessions', `at most ${maximum} live sockets at once per client (${setting})`, { maximum }, LIVE_SESSIONS_RETRY_AFTER_SECONDS);
      }
    },
    // Without the upgrade (a plain GET), said as every refusal is.
    handler: async (_request, reply) => {
      reply.header('upgrade', 'websocket');
      throw new ApiError(426, 'upgrade_required', 'GET /v1/live is a WebSocket: connect with an Upgrade: websocket request');
    },
    wsHandler: (socket: WebSocket, request) => {
      const encoding: OutputEncoding = (request.query as { outputEncoding?: OutputEncoding }).outputEncoding ?? 'utf8';
      handleLiveSocket(socket, request, options, encoding);
    },
  });
};

function handleLiveSocket(socket: WebSocket, request: FastifyRequest, options: LiveFrontOptions, encoding: OutputEncoding): void {
  const { jobs, runtimes, policy } = options;
  const { maxStdinBytes } = options.liveSockets;
  const text = new StreamText();
  const live: JobSocket = new JobSocket(socket, request, options.liveSockets, LIVE_SUBMIT_TIMEOUT_MS, {
    message: (message) => onMessage(message),
    notJson: () => void fail(badRequest('invalid_json', 'a message is not JSON')),
    // Refused as an HTTP body with such a key is (app.ts, takeJsonBodies).
    prototypeKey: () => void fail(prototypeKeyRefusal()),
    tooSlow: () => void fail(new ApiError(429, 'client_too_slow', `more than ${LIVE_SEND_BUFFER_BYTES} bytes were left unread: read the socket as the program writes`)),
    shuttingDown: () => fail(new ApiError(503, 'shutting_down', 'the API is stopping: the job is cancelled')),
    noSubmit: () => void fail(new ApiError(408, 'submit_timeout', `no submit within ${LIVE_SUBMIT_TIMEOUT_MS} ms`)),
  });
  const { job } = live;

  /** An error as an HTTP answer would say it: an `error` message, and the close 4000 + status. */
  function ending(error: ApiError): SocketEnding {
    const body: Record<string, unknown> = { code: error.code, message: error.message };
    if (error.details) body.details = error.details;
    return { code: 4000 + error.statusCode, reason: error.code, last: { type: 'error', error: body } };
  }
  /** Ends the socket with an error; its job is cancelled. */
  function fail(error: ApiError): Promise<void> {
    const { code, reason, last } = ending(error);
    return live.end(code, reason, last);
  }
  const notSubmitted = () => void fail(badRequest('not_submitted', 'send {"type": "submit", "job": ...} first'));

  const onEvent = (event: LiveEvent): void => {
    switch (event.type) {
      case 'started':
      case 'stage':
        live.send(event);
        return;
      case 'output': {
        const data = encoding === 'base64' ? event.data.toString('base64') : text.text(event.stage, event.stream, event.data);
        if (data !== '') live.send({ type: 'output', stage: event.stage, stream: event.stream, data });
        return;
      }
      case 'exit':
        if (encoding === 'utf8') for (const { stream, text: rest } of text.rest(event.stage)) live.send({ type: 'output', stage: event.stage, stream, data: rest });
        live.send({ type: 'exit', stage: event.stage, ...event.exit });
        return;
      case 'inputLost':
        void fail(new ApiError(503, 'queue_unavailable', 'stdin could not be passed on (Redis unreachable, or the worker gone): the job is cancelled, its input having a gap'));
        return;
      case 'end': {
        if (live.ended) return;
        if (!event.record) {
          void fail(new ApiError(404, 'job_not_found', 'the job disappeared before it finished'));
          return;
        }
        let done: Record<string, unknown>;
        let text: string | undefined;
        try {
          done = { type: 'done', job: presentJob(event.record, encoding) };
          // Small, made whole as every other message; large (up to CELLBLOCK_MAX_JOB_OUTPUT_BYTES
          // of outputs: hundreds of MB of text, past V8's longest string as escaped control bytes),
          // made as it is sent, piece by piece, as GET answers it (json-stream.ts).
          if (stringChars(done) < STREAMED_JSON_MIN_CHARS) text = JSON.stringify(done);
        } catch (error) {
          void fail(toApiError(error, request));
          return;
        }
        if (text !== undefined) void live.end(1000, 'done', text);
        else void live.endStreamed(1000, 'done', jsonTextStream(done), (error) => ending(toApiError(error, request)));
      }
    }
  };

  const submit = (submission: unknown, terminal: unknown): void => {
    if (job.submitted) {
      void fail(badRequest('already_submitted', 'a live session runs one job'));
      return;
    }
    if (terminal !== undefined && !isTerminalSize(terminal)) {
      void fail(badRequest('invalid_message', `submit's terminal is ${TERMINAL_SIZE_SHAPE}`));
      return;
    }
    const checked = submissionCheck(submission);
    if ('error' in checked) {
      void fail(toApiError(validationError(checked.error), request));
      return;
    }
    const submitted = checked.value;
    let jobRequest;
    try {
      // Said first: a live job's tests are refused as such, not for what goes with them (a
      // job-wide stdin beside them, say).
      const problem = liveJobProblem(submitted);
      if (problem) throw badRequest('live_not_applicable', problem);
      jobRequest = toJobRequest(submitted, runtimes, policy);
      if (terminal !== undefined) jobRequest.terminal = { rows: terminal.rows, cols: terminal.cols };
    } catch (error) {
      void fail(toApiError(error, request));
      return;
    }
    job.submit(jobs, jobRequest, onEvent, {
      accepted: (session) => live.send({ type: 'accepted', id: session.id }),
      refused: (error) => void fail(toApiError(error, request)),
    });
  };

  function onMessage(message: unknown): void {
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      void fail(badRequest('invalid_message', 'a message is a JSON object with a type'));
      return;
    }
    const fields = message as Record<string, unknown>;
    switch (fields.type) {
      case 'submit':
        submit(fields.job, fields.terminal);
        return;
      case 'stdin': {
        if (typeof fields.data !== 'string' || (fields.base64 !== undefined && typeof fields.base64 !== 'boolean')) {
          void fail(badRequest('invalid_message', 'stdin is {"type": "stdin", "data": string, "base64"?: boolean}'));
          return;
        }
        let data: Buffer;
        try {
          data = fields.base64 === true ? decodeBase64(fields.data, 'stdin data') : Buffer.from(fields.data, 'utf8');
        } catch (error) {
          void fail(toApiError(error, request));
          return;
        }
        const sent = job.write(data);
        if (sent === 'not_submitted') notSubmitted();
        if (sent === 'too_large') void fail(new ApiError(413, 'stdin_too_large', `a live session takes at most ${maxStdinBytes} bytes of stdin`, { maximum: maxStdinBytes }));
        return;
      }
      case 'stdinEnd':
        if (!job.endStdin()) notSubmitted();
        return;
      case 'resize': {
        const size = { rows: fields.rows, cols: fields.cols };
        if (!isTerminalSize(size)) {
          void fail(badRequest('invalid_message', `resize is {"type": "resize", "rows", "cols"}: ${TERMINAL_SIZE_SHAPE}`));
          return;
        }
        const sent = job.resize(size);
        if (sent === 'not_submitted') notSubmitted();
        if (sent === 'no_terminal') void fail(badRequest('no_terminal', 'resize applies to a job submitted with a terminal: {"type": "submit", "job", "terminal": {"rows", "cols"}}'));
        return;
      }
      case 'cancel': {
        const cancelling = job.cancel();
        if (!cancelling) notSubmitted();
        else cancelling.catch((err: unknown) => void fail(toApiError(err, request)));
        return;
      }
      default:
        void fail(badRequest('invalid_message', `unknown message type ${JSON.stringify(fields.type)}: submit, stdin, stdinEnd, resize or cancel`));
    }
  }
}
