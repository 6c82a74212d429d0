// Delivers a finished job to its webhook: POST of JSON, retried with exponential backoff on
// network errors, timeouts, 429 and 5xx; any other answer is final. Delivery is at-least-once
// per worker: a receiver should treat the job id as the idempotency key. Only to destinations the
// operator permits (outbound.ts); one outside them is not retried.
import { OutboundRefusedError, sendOutbound, type OutboundPolicy } from './outbound.js';

export interface WebhookPolicy {
  attempts: number;
  timeoutMs: number;
  /** Wait before the second attempt; doubles after each further one. */
  backoffMs: number;
  /** Where a webhook may be sent. */
  destinations: OutboundPolicy;
}

export interface WebhookOutcome {
  delivered: boolean;
  attempts: number;
  /** Last HTTP status, when there was an answer. */
  status?: number;
  error?: string;
}

const retryable = (status: number) => status === 429 || status >= 500;

export async function deliverWebhook(
  url: string,
  jobId: string,
  body: unknown,
  policy: WebhookPolicy,
  stop: AbortSignal = new AbortController().signal,
): Promise<WebhookOutcome> {
  let payload: string;
  try {
    payload = JSON.stringify(body);
  } catch (error) {
    // A job whose output, escaped as JSON text, passes V8's longest string (~512 Mi characters:
    // 100 tests of 1 MiB of control bytes do) cannot be sent as one body.
    return { delivered: false, attempts: 0, error: `cannot serialise the job as JSON: ${(error as Error).message}` };
  }
  let outcome: WebhookOutcome = { delivered: false, attempts: 0 };
  for (let attempt = 1; attempt <= policy.attempts && !stop.aborted; attempt++) {
    if (attempt > 1) {
      await new Promise<void>((resolve) => {
        const onStop = () => {
          clearTimeout(timer);
          resolve();
        };
        // Removed when the backoff ends: the stop signal lives as long as the worker.
        const timer = setTimeout(() => {
          stop.removeEventListener('abort', onStop);
          resolve();
        }, policy.backoffMs * 2 ** (attempt - 2));
        stop.addEventListener('abort', onStop, { once: true });
      });
    }
    try {
      const status = await sendOutbound(policy.destinations, url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'cellblock-webhook', 'x-cellblock-job-id': jobId },
        body: payload,
        signal: AbortSignal.any([AbortSignal.timeout(policy.timeoutMs), stop]),
      });
      const delivered = status >= 200 && status < 300;
      outcome = { delivered, attempts: attempt, status };
      if (delivered || !retryable(status)) return outcome;
    } catch (error) {
      outcome = { delivered: false, attempts: attempt, error: (error as Error).message };
      if (error instanceof OutboundRefusedError) return outcome;
    }
  }
  return outcome;
}
