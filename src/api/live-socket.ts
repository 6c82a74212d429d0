// What the live fronts (/v1/live, Piston's /api/v2/connect) share, so that each is only its
// messages: a socket's life (JobSocket: its messages parsed, what it sends bounded by what the
// client reads, its end cancelling its job, the deadline for its first message; a last message
// sent in fragments goes by streamed-message.ts), its job from the submit on (SocketJob), the
// API's open sockets (LiveSockets: at most so many per client, each ended with its front's word
// when the API stops), and output as text (StreamText).
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { nanoid } from 'nanoid';
import type { WebSocket } from 'ws';
import type { Runtime } from '../images/types.js';
import type { JobRequest, LiveEvent, LiveSession, LiveStage, TerminalSize } from '../jobs/model.js';
import type { LiveSocketClaim } from '../queue/live-socket-ledger.js';
import { ApiError, hasPrototypeKey } from './errors.js';
import type { JobService } from './service.js';
import { LIVE_FRAGMENT_PACE, StreamedMessage } from './streamed-message.js';
import type { SubmissionPolicy } from './submission.js';

/** What a live front (/v1/live, Piston's /api/v2/connect) is given. */
export interface LiveFrontOptions {
  jobs: JobService;
  runtimes: Runtime[];
  policy: SubmissionPolicy;
  liveSockets: LiveSockets;
}

/** How much a socket may hold unsent (a client that does not read what its program writes)
 * before it is ended: the API's memory is not the client's buffer. */
export const LIVE_SEND_BUFFER_BYTES = 16 * 1024 * 1024;

/** How a front ends a socket on an error: the close's code and reason, and its last message. */
export interface SocketEnding {
  code: number;
  reason: string;
  last: Record<string, unknown>;
}

/** How a live job's cancel that failed (Redis away, or frozen past the job client's timeout) is
 * tried again: after `firstMs`, doubling up to `maxMs` between tries, until it is made (or finds
 * the job ended), `boundMs` have passed since the first try, or `stopped` (the API stopping: its
 * close must not wait on Redis; the job then runs to its limits). Without the tries again, one
 * failure left the job running to its limits, a worker held, although its socket is gone. */
export interface CancelRetry {
  firstMs: number;
  maxMs: number;
  boundMs: number;
  stopped?: AbortSignal;
}

/** A Redis restart or failover is over within the bound; one away longer has the job run on. */
export const LIVE_CANCEL_RETRY: CancelRetry = { firstMs: 250, maxMs: 4000, boundMs: 60_000 };

/** What a front does at a socket's moments. */
export interface JobSocketHandlers {
  /** A message, parsed from JSON (any JSON value). */
  message(message: unknown): void;
  /** A message that is not JSON. */
  notJson(error: Error): void;
  /** A message with a key that could set an object's prototype (hasPrototypeKey); such messages
   * are taken as any other where absent (Piston's socket, which parses as Piston does). */
  prototypeKey?(): void;
  /** The client left more than LIVE_SEND_BUFFER_BYTES unread. */
  tooSlow(): void;
  /** The API is stopping: the front's last word (its end()). */
  shuttingDown(): Promise<void>;
  /** No job submitted `firstMessageMs` after the socket opened. */
  noSubmit(): void;
}

/** One live socket of a front: its job, its end (once: a last message, a close code, the job
 * cancelled unless it has ended), and its bookkeeping (LiveSockets, the first message's deadline). */
export class JobSocket {
  readonly job: SocketJob;
  private over = false;
  private readonly log: FastifyBaseLogger;
  /** The last message going in fragments (endStreamed), and its end (the close made): an API
   * that stops waits for that end, or cuts the message (shutdown()). */
  private streaming: { message: StreamedMessage; finished: Promise<void> } | undefined;

  constructor(
    private readonly socket: WebSocket,
    request: FastifyRequest,
    liveSockets: LiveSockets,
    firstMessageMs: number,
    private readonly handlers: JobSocketHandlers,
  ) {
    this.log = request.log;
    this.job = new SocketJob(request.log, liveSockets.maxStdinBytes, () => this.over, liveSockets.cancelRetry);
    const deadline = setTimeout(() => {
      if (!this.job.submitted) handlers.noSubmit();
    }, firstMessageMs);
    const forget = liveSockets.add(request, () => this.shutdown());
    socket.on('message', (raw) => {
      if (this.over) return;
      try {
        this.take(raw);
      } catch (error) {
        // ws calls this listener from its socket's data event, where a throw is uncaught and ends
        // the API process: a fault in taking one message (a bug: 1f31de4's was one) ends that
        // socket and its job instead, said in the log.
        this.log.error({ err: error }, 'live socket: taking a message failed; socket ended');
        void this.end(1011, 'internal_error');
      }
    });
    socket.on('close', () => {
      clearTimeout(deadline);
      this.over = true;
      // The client went away (or was sent away): no one reads what the program writes. It counts
      // against its client until its job is cancelled (that job holds a worker until then).
      void this.job.abandon().finally(forget);
    });
  }

  /** One message from the client, to its front's handlers. */
  private take(raw: WebSocket.RawData): void {
    let message: unknown;
    let text: string;
    try {
      // A text or binary frame alike: ws hands both as bytes.
      text = raw.toString();
      message = JSON.parse(text);
    } catch (error) {
      this.handlers.notJson(error as Error);
      return;
    }
    if (this.handlers.prototypeKey && hasPrototypeKey(text, message)) {
      this.handlers.prototypeKey();
      return;
    }
    this.handlers.message(message);
  }

  /** Whether the socket has ended (or is ending): nothing more is sent or taken. */
  get ended(): boolean {
    return this.over;
  }

  send(message: Record<string, unknown>): void {
    this.sendText(JSON.stringify(message));
  }

  /** A message already made into JSON text (one that may be too large to make is made by the
   * caller, where it can say so). */
  sendText(text: string): void {
    // Nothing after the end's last message: one sent in fragments may still be going, and no
    // other message can come between them.
    if (this.over || this.socket.readyState !== this.socket.OPEN) return;
    // A client is too slow when what was sent before this message is still unread past the
    // bound: one message larger than the bound (a job's `done` with large outputs) is not its
    // fault, and goes.
    const unread = this.socket.bufferedAmount;
    this.socket.send(text);
    if (!this.over && unread > LIVE_SEND_BUFFER_BYTES) this.handlers.tooSlow();
  }

  /** Sends `last` (when given), closes with `code` and `reason`, and cancels the job unless it has
   * ended; resolves once that cancel is done. Once ended, answers that same cancel. */
  end(code: number, reason: string, last?: Record<string, unknown> | string): Promise<void> {
    if (!this.over) {
      // Over before the last message goes: sending it must not end the socket again (a client
      // too slow for it would have recurred here until the stack overflowed, ending the API).
      this.over = true;
      if (last !== undefined) this.write(typeof last === 'string' ? last : JSON.stringify(last));
      this.socket.close(code, reason);
    }
    return this.job.abandon();
  }

  /** As end(), its last message `text` (JSON text made as it is read: json-stream.ts) sent as one
   * message in fragments (StreamedMessage), each once the socket holds less than
   * LIVE_FRAGMENTS_BUFFER_BYTES unsent and after a turn of the event loop: the API never holds the
   * message whole, and its other sockets (and its Redis subscriber) are served between pieces. The
   * close follows the last fragment. Where the text cannot be made, `failed` says the end instead:
   * its last message too where nothing of the text was sent, else only its close (no message can
   * come inside another). A client that takes it too slowly (FragmentPace) is ended 429
   * client_too_slow, said as `failed` says it: the done's own bytes are paced, not counted against
   * LIVE_SEND_BUFFER_BYTES, but one that stops reading, or reads a trickle, must not hold the view
   * (and its place) for hours. An API that stops waits for the message (shutdown()). */
  endStreamed(code: number, reason: string, text: Readable, failed: (error: unknown) => SocketEnding, pace = LIVE_FRAGMENT_PACE): Promise<void> {
    if (!this.over) {
      this.over = true;
      const message = new StreamedMessage(this.socket, text, pace);
      const finished = message.send()
        .then(
          (sent) => {
            if (sent) this.socket.close(code, reason);
          },
          (error: unknown) => {
            if (this.socket.readyState !== this.socket.OPEN) return;
            const ending = failed(error);
            if (message.started) {
              // A client too slow is its own doing: not the API's to warn of.
              const tooSlow = error instanceof ApiError && error.code === 'client_too_slow';
              this.log[tooSlow ? 'info' : 'warn']({ err: error, code: ending.code }, 'live socket: its last message was cut short');
            } else this.write(JSON.stringify(ending.last));
            this.socket.close(ending.code, ending.reason);
            // Cut for the stop: a client that left the message's fragments unread will not read
            // the close either, and ws would wait 30 s more for its answer, holding the stop.
            if (error instanceof ApiError && error.code === 'shutting_down') this.socket.terminate();
          },
        )
        // The end's own failure (a `failed` or a close that throws) must not end the API process;
        // the socket is dropped rather than left open, ended, holding its place.
        .catch((err: unknown) => {
          this.log.error({ err }, 'live socket: its last message could not be ended');
          try {
            this.socket.terminate();
          } catch {
            // Already gone.
          }
        });
      this.streaming = { message, finished };
    }
    return this.job.abandon();
  }

  /** The API is stopping: a last message going in fragments is waited for (a close between its
   * fragments would leave the client a part of it, which its library discards, and no word), for
   * at most its pace's stopMs, then cut (close 4503 shutting_down alone); then the front's word. */
  private async shutdown(): Promise<void> {
    const streaming = this.streaming;
    if (streaming) {
      const { stopMs } = streaming.message.pace;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), stopMs)));
      if ((await Promise.race([streaming.finished, late])) === 'late') {
        streaming.message.cut(new ApiError(503, 'shutting_down', `the API is stopping: its last message was cut after ${stopMs} ms`));
        await streaming.finished;
      }
      clearTimeout(timer);
    }
    return this.handlers.shuttingDown();
  }

  /** Sends a whole message where the socket is open. */
  private write(text: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(text);
  }
}

/** A socket's live job. What the client sends while the job is being queued waits for its session
 * (stdin counted at once against the session's maximum, merged, and an end or a cancel kept once:
 * a flood of messages holds no more than the bytes it carries); a socket that ends meanwhile has
 * the job cancelled as soon as it exists, and `abandon` resolves only then. */
export class SocketJob {
  private session: LiveSession | undefined;
  /** The submit under way: settles once the session exists (or the submit failed). */
  private submitting: Promise<void> | undefined;
  /** Input sent during the submit, for the session: stdin merged, then its end. */
  private pendingStdin: Buffer[] = [];
  private pendingStdinEnd = false;
  /** The terminal's size last asked for during the submit (only the last matters). */
  private pendingResize: TerminalSize | undefined;
  /** The job has a terminal (its submit asked for one): resize() passes sizes on. */
  private terminal = false;
  private stdinBytes = 0;
  private cancelling: Promise<void> | undefined;
  private abandoning: Promise<void> | undefined;
  /** The job has ended (its `end` came): nothing to cancel. */
  private ended = false;

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly maxStdinBytes: number,
    /** Whether the job's socket has ended: a session that comes after it is only cancelled. */
    private readonly socketEnded: () => boolean,
    private readonly cancelRetry: CancelRetry = LIVE_CANCEL_RETRY,
  ) {}

  get submitted(): boolean {
    return this.submitting !== undefined;
  }

  /** Queues the job; `accepted` once it is (unless the socket has ended by then: its abandon()
   * cancels it), `refused` with what the queue threw. */
  submit(
    jobs: JobService,
    request: JobRequest,
    onEvent: (event: LiveEvent) => void,
    handlers: { accepted: (session: LiveSession) => void; refused: (error: unknown) => void },
  ): void {
    this.terminal = request.terminal !== undefined;
    this.submitting = jobs
      .submitLive(request, (event) => {
        // The job's end: the session is over, and there is nothing to cancel.
        if (event.type === 'end') this.ended = true;
        onEvent(event);
      })
      .then(
        (session) => {
          this.session = session;
          if (this.socketEnded()) return;
          this.log.info({ jobId: session.id, runtimeId: request.runtimeId }, 'live job accepted');
          handlers.accepted(session);
          if (this.pendingStdin.length > 0) session.write(Buffer.concat(this.pendingStdin));
          this.pendingStdin = [];
          if (this.pendingStdinEnd) session.endStdin();
          if (this.pendingResize) session.resize(this.pendingResize);
          this.pendingResize = undefined;
        },
        (error: unknown) => handlers.refused(error),
      )
      // A socket's handlers must not end the API process.
      .catch((err: unknown) => this.log.error({ err }, 'live socket: unexpected error'));
  }

  /** Sends stdin (now, or once the session exists): `too_large` (nothing sent) past the maximum,
   * `not_submitted` before a submit. */
  write(data: Buffer): 'sent' | 'too_large' | 'not_submitted' {
    if (!this.submitted) return 'not_submitted';
    if (this.stdinBytes + data.byteLength > this.maxStdinBytes) return 'too_large';
    this.stdinBytes += data.byteLength;
    if (data.byteLength === 0 || this.pendingStdinEnd) return 'sent';
    if (this.session) this.session.write(data);
    else this.pendingStdin.push(data);
    return 'sent';
  }

  /** The program's stdin ends (now, or once the session exists); false before a submit. */
  endStdin(): boolean {
    if (!this.submitted) return false;
    if (this.session) this.session.endStdin();
    else this.pendingStdinEnd = true;
    return true;
  }

  /** The job's terminal has a new size (now, or once the session exists): `no_terminal` for a job
   * submitted without one, `not_submitted` before a submit. */
  resize(size: TerminalSize): 'sent' | 'no_terminal' | 'not_submitted' {
    if (!this.submitted) return 'not_submitted';
    if (!this.terminal) return 'no_terminal';
    if (this.session) this.session.resize(size);
    else this.pendingResize = size;
    return 'sent';
  }

  /** Cancels the job, once however often asked (once the session exists); undefined before a
   * submit. */
  cancel(): Promise<void> | undefined {
    if (!this.submitting) return undefined;
    this.cancelling ??= this.submitting.then(() => this.session?.cancel());
    return this.cancelling;
  }

  /** The client is gone, refused or the API is stopping: stop listening, and cancel the job,
   * whose output no one would read (a submit under way first finishes, so that its job is not
   * left behind). Resolves once the cancel is done, or given up (CancelRetry). */
  abandon(): Promise<void> {
    this.abandoning ??= (async () => {
      await this.submitting;
      const session = this.session;
      if (!session) return;
      session.close();
      if (this.ended) return;
      await this.cancelUntilMade(session);
    })();
    return this.abandoning;
  }

  /** Cancels the job, trying again as `cancelRetry` says while the cancel fails. A cancel that
   * is made answers a job that has ended as it is: nothing more to do either way. */
  private async cancelUntilMade(session: LiveSession): Promise<void> {
    const { firstMs, maxMs, boundMs, stopped } = this.cancelRetry;
    const startedAt = Date.now();
    let delayMs = firstMs;
    for (let tries = 1; ; tries++) {
      try {
        await session.cancel();
        if (tries > 1) this.log.info({ jobId: session.id, tries }, 'live job cancelled');
        return;
      } catch (err) {
        const giveUp = stopped?.aborted === true || Date.now() - startedAt + delayMs > boundMs;
        if (giveUp) {
          this.log.warn({ err, jobId: session.id, tries }, `live job not cancelled: given up (${stopped?.aborted ? 'the API is stopping' : `still failing after ${boundMs} ms`}); it runs on to its limits`);
          return;
        }
        if (tries === 1) this.log.warn({ err, jobId: session.id }, 'live job not cancelled; trying again');
      }
      await sleep(delayMs, undefined, stopped ? { signal: stopped } : {}).catch(() => undefined);
      delayMs = Math.min(delayMs * 2, maxMs);
    }
  }
}

/** The Retry-After of an upgrade refused for its client's places (429 too_many_live_sessions, and
 * Piston's 429). Nothing on the server says when a place frees: one of the client's own sockets
 * closes (it sees that itself), or an API that died lets its places lapse (within a minute). So a
 * fixed wait, as queue_full's is, and the same 10 s: as long as a socket that never submits holds
 * its place on /v1/live (its submit timeout), while a socket running a job holds it until the job
 * ends. Shorter would mostly meet the same refusal, counted in the rate limit each time. */
export const LIVE_SESSIONS_RETRY_AFTER_SECONDS = 10;

/** Why an upgrade opens no socket: its client holds all its places (`maximum`, set by `setting`). */
export interface LiveSocketRefusal {
  maximum: number;
  setting: string;
}

/** Who a live socket counts against: its API key (with the key's own maximum, where it has one),
 * or its address where there are none (as the rate limit counts). */
function liveClientOf(request: FastifyRequest): { id: string; maxSessions?: number } {
  const apiKey = request.apiKey;
  if (!apiKey) return { id: `ip:${request.ip}` };
  return apiKey.maxLiveSessions === undefined ? { id: `key:${apiKey.key}` } : { id: `key:${apiKey.key}`, maxSessions: apiKey.maxLiveSessions };
}

/** How long a socket's place stays claimed unless its API renews it (every third of it): an API
 * that dies gives its sockets' places back within this (src/queue/live-socket-ledger.ts). */
const LIVE_SOCKET_LEASE_MS = 60_000;

/** The API's open live sockets: at most `maxPerClient` per client, or its key's own maximum, on
 * all API processes together (each may hold a worker for its run's wall time, waiting for input,
 * and the rate limit counts only its upgrade), counted in Redis; and a stopping API ends each
 * with a word (not a bare close) and cancels its job while the job client is still open. */
export class LiveSockets {
  /** Each open socket's shutdown, and its claim. */
  private readonly open = new Map<() => Promise<void>, LiveSocketClaim | undefined>();
  /** Claims taken for upgrades that have not become sockets yet. */
  private readonly claimsOfUpgrades = new WeakMap<FastifyRequest, LiveSocketClaim>();
  private renewing: NodeJS.Timeout | undefined;
  /** closeAll() has begun: no more places are claimed. */
  private closing = false;
  /** Aborted as closeAll() begins: live jobs' cancels are tried no more (CancelRetry.stopped). */
  private readonly stopping = new AbortController();

  /** Live sockets one client may hold open at once (a key's own maximum takes its place). */
  private readonly maxPerClient: number;
  /** The most stdin bytes one socket sends in all (CELLBLOCK_BODY_LIMIT_BYTES: what one
   * submission's stdin could hold). */
  readonly maxStdinBytes: number;

  constructor(
    limits: { maxPerClient: number; maxStdinBytes: number },
    private readonly ledger: Pick<JobService, 'claimLiveSocket' | 'releaseLiveSocket' | 'renewLiveSockets'>,
    private readonly leaseMs = LIVE_SOCKET_LEASE_MS,
  ) {
    this.maxPerClient = limits.maxPerClient;
    this.maxStdinBytes = limits.maxStdinBytes;
  }

  /** How each socket's job cancel is tried again: until the API stops, at the latest. */
  get cancelRetry(): CancelRetry {
    return { ...LIVE_CANCEL_RETRY, stopped: this.stopping.signal };
  }

  /** Sockets open now on this process (until each one's job is cancelled). */
  get size(): number {
    return this.open.size;
  }

  /** Claims a place for the upgrade `request` (asked before the upgrade) for its client; the
   * refusal when the client holds all its places already. Throws QueueUnavailableError where Redis
   * is away, and a 503 `shutting_down` once the API is stopping. An upgrade that does not become a
   * socket (the handshake refused, the client gone) gives its place back when its connection
   * closes. */
  async admit(request: FastifyRequest): Promise<LiveSocketRefusal | undefined> {
    if (this.closing) throw new ApiError(503, 'shutting_down', 'the API is stopping: connect again (to another API process)', undefined, 1);
    const client = liveClientOf(request);
    const maximum = client.maxSessions ?? this.maxPerClient;
    const claim = { client: client.id, socketId: nanoid() };
    let claimed: boolean;
    try {
      claimed = await this.ledger.claimLiveSocket(claim, maximum, this.leaseMs);
    } catch (error) {
      // A claim that timed out may still be made when Redis answers: its release follows it on
      // the same connection.
      this.release(claim);
      throw error;
    }
    if (!claimed) {
      return { maximum, setting: client.maxSessions === undefined ? 'CELLBLOCK_MAX_LIVE_SESSIONS_PER_CLIENT' : "this key's in CELLBLOCK_API_KEYS" };
    }
    this.claimsOfUpgrades.set(request, claim);
    const connection = request.raw.socket;
    const unadopted = (): void => {
      const left = this.claimsOfUpgrades.get(request);
      if (!left) return;
      this.claimsOfUpgrades.delete(request);
      this.release(left);
    };
    if (connection.destroyed) unadopted();
    else connection.once('close', unadopted);
    return undefined;
  }

  /** The upgrade `request` is a socket: `shutdown` ends it and resolves once its job is
   * cancelled; returns the removal, which gives its place back. */
  add(request: FastifyRequest, shutdown: () => Promise<void>): () => void {
    const claim = this.claimsOfUpgrades.get(request);
    this.claimsOfUpgrades.delete(request);
    this.open.set(shutdown, claim);
    if (!this.renewing && !this.closing) {
      this.renewing = setInterval(() => this.renew(), this.leaseMs / 3);
      this.renewing.unref();
    }
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.open.delete(shutdown);
      // Once closing, closeAll gives every place back itself, before the job client closes.
      if (claim && !this.closing) this.release(claim);
      if (this.open.size === 0) this.stopRenewing();
    };
  }

  /** Ends every socket (its job cancelled) and gives their places back before the job client
   * closes: a stopping API's clients reconnect to the others at once, and must find room. */
  async closeAll(): Promise<void> {
    this.closing = true;
    // Each socket's cancel is tried once more (its shutdown's), not until Redis is back: a stop
    // while Redis is away would wait on it. A cancel already trying again stops now.
    this.stopping.abort();
    const claims = this.openClaims();
    await Promise.allSettled([...this.open.keys()].map((shutdown) => shutdown()));
    this.stopRenewing();
    await Promise.allSettled(claims.map((claim) => this.ledger.releaseLiveSocket(claim)));
  }

  /** Gives a place back; Redis away, it comes back when its lease lapses. */
  private release(claim: LiveSocketClaim): void {
    void this.ledger.releaseLiveSocket(claim).catch(() => undefined);
  }

  private renew(): void {
    // Redis away: renewed at the next turn; a claim that lapsed meanwhile is made again then.
    void this.ledger.renewLiveSockets(this.openClaims(), this.leaseMs).catch(() => undefined);
  }

  /** The claims of the sockets open now (one made while Redis was away has none). */
  private openClaims(): LiveSocketClaim[] {
    return [...this.open.values()].filter((claim): claim is LiveSocketClaim => claim !== undefined);
  }

  private stopRenewing(): void {
    clearInterval(this.renewing);
    this.renewing = undefined;
  }
}

/** Decodes each stage's stream as UTF-8 across chunks: a character split between two writes is
 * sent whole, with the second. */
export class StreamText {
  private readonly decoders = new Map<string, StringDecoder>();

  text(stage: LiveStage, stream: string, chunk: Buffer): string {
    const key = `${stage}:${stream}`;
    let decoder = this.decoders.get(key);
    if (!decoder) this.decoders.set(key, (decoder = new StringDecoder('utf8')));
    return decoder.write(chunk);
  }

  /** What a stage's streams held back at its end (an incomplete character, as U+FFFD). */
  rest(stage: LiveStage): { stream: 'stdout' | 'stderr'; text: string }[] {
    return (['stdout', 'stderr'] as const).flatMap((stream) => {
      const text = this.decoders.get(`${stage}:${stream}`)?.end() ?? '';
      return text === '' ? [] : [{ stream, text }];
    });
  }
}
