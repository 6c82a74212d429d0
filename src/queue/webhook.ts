// Sends a finished job's notification: a /v1 webhook (POST of the job's view, retried with
// exponential backoff on network errors, timeouts, 429 and 5xx; any other answer is final) or a
// Judge0 callback (PUT of the submission, tried up to 3 times on network errors only, as Judge0
// does). Delivery is at least once (notification-queue.ts): a receiver should treat the job id
// as the idempotency key. Only to destinations the operator permits (outbound.ts); one outside them is
// not retried.
import { OutboundRefusedError, sendOutbound, type OutboundPolicy } from './outbound.js';

export interface WebhookPolicy {
  attempts: number;
  timeoutMs: number;
  /** Wait before the second attempt; doubles after each further one. */
  backoffMs: number;
  /** Where a webhook may be sent. */
  destinations: OutboundPolicy;
}

/** What to send when a job has finished, and how. */
export interface Notification {
  url: string;
  method: 'POST' | 'PUT';
  body: unknown;
  headers: Record<string, string>;
  /** Whether a 429 or 5xx answer is tried again (else only failures to get an answer are). */
  retryOnStatus: boolean;
  /** Overrides of the operator's policy (a compat front's own protocol). */
  attempts?: number;
  timeoutMs?: number;
  backoffMs?: number;
}

export interface WebhookOutcome {
  delivered: boolean;
  attempts: number;
  /** Last HTTP status, when there was an answer. */
  status?: number;
  error?: string;
}

const retryable = (status: number) => status === 429 || status >= 500;

/** A /v1 webhook: the job's view POSTed, with the operator's retries. */
export function webhookNotification(url: string, jobId: string, body: unknown): Notification {
  return {
    url,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', 'user-agent': 'cellblock-webhook', 'x-cellblock-job-id': jobId },
    retryOnStatus: true,
  };
}

export async function deliverNotification(
  notification: Notification,
  policy: WebhookPolicy,
  stop: AbortSignal = new AbortController().signal,
): Promise<WebhookOutcome> {
  const attempts = notification.attempts ?? policy.attempts;
  const timeoutMs = notification.timeoutMs ?? policy.timeoutMs;
  const backoffMs = notification.backoffMs ?? policy.backoffMs;
  let payload: string;
  try {
    payload = JSON.stringify(notification.body);
  } catch (error) {
    // A job whose output, escaped as JSON text, passes V8's longest string (~512 Mi characters:
    // 100 tests of 1 MiB of control bytes do) cannot be sent as one body.
    return { delivered: false, attempts: 0, error: `cannot serialise the job as JSON: ${(error as Error).message}` };
  }
  let outcome: WebhookOutcome = { delivered: false, attempts: 0 };
  for (let attempt = 1; attempt <= attempts && !stop.aborted; attempt++) {
    if (attempt > 1 && backoffMs > 0) {
      await new Promise<void>((resolve) => {
        const onStop = () => {
          clearTimeout(timer);
          resolve();
        };
        // Removed when the backoff ends: the stop signal lives as long as the worker.
        const timer = setTimeout(() => {
          stop.removeEventListener('abort', onStop);
          resolve();
        }, backoffMs * 2 ** (attempt - 2));
        stop.addEventListener('abort', onStop, { once: true });
      });
    }
    try {
      const status = await sendOutbound(policy.destinations, notification.url, {
        method: notification.method,
        headers: notification.headers,
        body: payload,
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), stop]),
      });
      const delivered = status >= 200 && status < 300;
      outcome = { delivered, attempts: attempt, status };
      if (delivered || !notification.retryOnStatus || !retryable(status)) return outcome;
    } catch (error) {
      outcome = { delivered: false, attempts: attempt, error: (error as Error).message };
      if (error instanceof OutboundRefusedError) return outcome;
    }
  }
  return outcome;
}
