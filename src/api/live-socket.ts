// What the live fronts (/v1/live, Piston's /api/v2/connect) share: a socket's job from its submit
// on, the API's open sockets (ended with a word when the API stops), and output as text.
import { StringDecoder } from 'node:string_decoder';
import type { FastifyBaseLogger } from 'fastify';
import type { JobRequest, LiveEvent, LiveSession, LiveStage } from '../jobs/model.js';
import type { JobService } from './service.js';

/** How much a socket may hold unsent (a client that does not read what its program writes)
 * before it is ended: the API's memory is not the client's buffer. */
export const LIVE_SEND_BUFFER_BYTES = 16 * 1024 * 1024;

/** A socket's live job. Input the client sends while the job is being queued waits for its
 * session (counted at once against the session's maximum); a job whose socket ended meanwhile is
 * cancelled as soon as it exists. */
export class SocketJob {
  private session: LiveSession | undefined;
  /** Between the submit and its session: what to do with the session once it exists. */
  private pending: ((session: LiveSession) => void)[] | undefined;
  private stdinBytes = 0;
  /** The job has ended (its `end` came): nothing to cancel. */
  private ended = false;

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly maxStdinBytes: number,
  ) {}

  get submitted(): boolean {
    return this.session !== undefined || this.pending !== undefined;
  }

  /** Queues the job; `accepted` once it is (unless the socket has ended by then: `socketEnded()`),
   * `refused` with what the queue threw. */
  submit(
    jobs: JobService,
    request: JobRequest,
    onEvent: (event: LiveEvent) => void,
    handlers: { socketEnded: () => boolean; accepted: (session: LiveSession) => void; refused: (error: unknown) => void },
  ): void {
    this.pending = [];
    jobs
      .submitLive(request, onEvent, { maxStdinBytes: this.maxStdinBytes })
      .then(
        (session) => {
          const waiting = this.pending ?? [];
          this.pending = undefined;
          this.session = session;
          if (handlers.socketEnded()) {
            void this.abandon();
            return;
          }
          this.log.info({ jobId: session.id, runtimeId: request.runtimeId }, 'live job accepted');
          handlers.accepted(session);
          for (const use of waiting) use(session);
        },
        (error: unknown) => {
          this.pending = undefined;
          handlers.refused(error);
        },
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
    this.use((session) => session.write(data));
    return 'sent';
  }

  /** Runs `use` on the session now, or once it exists; false when nothing was submitted. */
  use(use: (session: LiveSession) => void): boolean {
    if (this.session) use(this.session);
    else if (this.pending) this.pending.push(use);
    else return false;
    return true;
  }

  /** The job's `end` came: the session is over, and there is nothing to cancel. */
  end(): void {
    this.ended = true;
  }

  /** The client is gone, refused or the API is stopping: stop listening, and cancel the job,
   * whose output no one would read. Resolves once the cancel is done (or failed). */
  async abandon(): Promise<void> {
    const session = this.session;
    if (!session) return;
    session.close();
    if (this.ended) return;
    this.ended = true;
    await session.cancel().catch((err: unknown) => this.log.warn({ err, jobId: session.id }, 'live job not cancelled'));
  }
}

/** The API's open live sockets: a stopping API ends each with a word (not a bare close) and
 * cancels its job while the job client is still open. */
export class LiveSockets {
  private readonly open = new Set<() => Promise<void>>();

  /** `shutdown` ends the socket and resolves once its job is cancelled; returns the removal. */
  add(shutdown: () => Promise<void>): () => void {
    this.open.add(shutdown);
    return () => this.open.delete(shutdown);
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.open].map((shutdown) => shutdown()));
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
