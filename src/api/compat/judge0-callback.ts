// Judge0's callback_url (IsolateJob#call_callback): when the submission is done, PUT it to the URL
// as JSON, base64-encoded, with the default fields; up to 3 tries of 5 s each, stopping at the
// first answer whatever its status. The front watches the job itself, because the body must be
// Judge0's shape, not /v1's webhook.
import type { FastifyBaseLogger } from 'fastify';
import type { JobClient, JobRecord } from '../../jobs/model.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import { OutboundRefusedError, sendOutbound, type OutboundPolicy } from '../../queue/outbound.js';
import type { Judge0Languages } from './judge0-languages.js';
import { JUDGE0_DEFAULT_FIELDS, judge0Attributes, serializeSubmission } from './judge0-submission.js';

export const CALLBACK_ATTEMPTS = 3;
export const CALLBACK_TIMEOUT_MS = 5000;
/** How long one wait for the job lasts before the watcher checks whether it should stop. */
const WAIT_SLICE_MS = 2000;
/** A job not finished after this long gets no callback (its result has likely expired). */
const GIVE_UP_AFTER_MS = 60 * 60 * 1000;

const isFinished = (record: JobRecord): boolean => record.status !== 'queued' && record.status !== 'running';

export class Judge0Callbacks {
  private readonly pending = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly jobs: JobClient,
    private readonly languages: Judge0Languages,
    private readonly destinations: OutboundPolicy,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Starts watching `token`; the PUT happens in the background. */
  watch(token: string, url: string): void {
    const delivery = this.deliver(token, url).catch((error: unknown) =>
      this.log.warn({ err: error, token }, 'judge0 callback: gave up'),
    );
    this.pending.add(delivery);
    void delivery.finally(() => this.pending.delete(delivery));
  }

  /** Stops watching; deliveries in flight finish their current step. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
  }

  private async deliver(token: string, url: string): Promise<void> {
    const deadline = Date.now() + GIVE_UP_AFTER_MS;
    let record: JobRecord | undefined;
    let away = false;
    while (!this.closed && Date.now() < deadline) {
      try {
        record = await this.jobs.wait(token, WAIT_SLICE_MS);
        away = false;
      } catch (error) {
        // Redis away (a restart): the job is safe in it, and so is this watch; wait it out.
        if (!(error instanceof QueueUnavailableError)) throw error;
        away = true;
        await new Promise((resolve) => setTimeout(resolve, WAIT_SLICE_MS));
        continue;
      }
      if (record === undefined || isFinished(record)) break;
    }
    if (this.closed && !(record && isFinished(record))) {
      // Watches live in this process: one that shuts down first sends none (said, not silent).
      this.log.warn({ token, redisAway: away }, 'judge0 callback: not sent, the API shut down before the submission finished');
      return;
    }
    if (record === undefined || !isFinished(record)) return;
    const body = JSON.stringify(serializeSubmission(judge0Attributes(record, this.languages), JUDGE0_DEFAULT_FIELDS, true));
    for (let attempt = 1; attempt <= CALLBACK_ATTEMPTS; attempt++) {
      try {
        await sendOutbound(this.destinations, url, {
          method: 'PUT',
          body,
          headers: { 'content-type': 'application/json' },
          signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
        });
        return;
      } catch (error) {
        if (error instanceof OutboundRefusedError) {
          this.log.warn({ token, url }, `judge0 callback: not sent: ${error.message}`);
          return;
        }
        this.log.info({ err: error, token, attempt }, 'judge0 callback: PUT failed');
      }
    }
  }
}
