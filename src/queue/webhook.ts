// Sends a finished job's notification, one attempt at a time: a /v1 webhook (POST of the job's
// view, retried with exponential backoff on network errors, timeouts, 429 and 5xx; any other
// answer is final) or a Judge0 callback (PUT of the submission, tried up to 3 times on network
// errors only, as Judge0 does). Delivery is at least once (notification-queue.ts): a receiver
// should treat the job id as the idempotency key. Only to destinations the operator permits
// (outbound.ts); one outside them is not retried.
import { OutboundRefusedError, sendOutbound, type OutboundPolicy } from './outbound.js';

export interface WebhookPolicy {
  attempts: number;
  timeoutMs: number;
  /** Wait before the second attempt; doubles after each further one. */
  backoffMs: number;
  /** Where a webhook may be sent. */
  destinations: OutboundPolicy;
  /** Stored bytes of the job records (request and result) whose attempts a notifier makes at
   * once: one larger goes alone. */
  memoryBytes: number;
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

/** One delivery attempt's outcome. */
export interface DeliveryAttempt {
  delivered: boolean;
  /** HTTP status, when there was an answer. */
  status?: number;
  error?: string;
  /** Worth another attempt later: no answer (a network error, the timeout), or 429 or 5xx where
   * the notification retries on status. A refused destination, a body that cannot be serialised
   * and any other answer are final. */
  retryable: boolean;
}

/** A notification's attempts, each one's timeout, and the wait before the second (doubled after
 * each further one): its own (a compat front's protocol), else the operator's. */
export interface DeliveryPlan {
  attempts: number;
  timeoutMs: number;
  backoffMs: number;
}

export function deliveryPlan(notification: Notification, policy: Pick<WebhookPolicy, 'attempts' | 'timeoutMs' | 'backoffMs'>): DeliveryPlan {
  return {
    attempts: notification.attempts ?? policy.attempts,
    timeoutMs: notification.timeoutMs ?? policy.timeoutMs,
    backoffMs: notification.backoffMs ?? policy.backoffMs,
  };
}

/** The wait before attempt number `next` (2 for the first retry). */
export function retryDelayMs(plan: DeliveryPlan, next: number): number {
  return plan.backoffMs * 2 ** (next - 2);
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

/** One attempt, to a destination the operator permits; `stop` (the worker stopping) ends it. The
 * retries are the notifier's (notifier.ts): between attempts a notification waits in Redis, not
 * in a slot of this process. */
export async function attemptDelivery(notification: Notification, timeoutMs: number, destinations: OutboundPolicy, stop: AbortSignal): Promise<DeliveryAttempt> {
  let payload: string;
  try {
    payload = JSON.stringify(notification.body);
  } catch (error) {
    // A job whose output, escaped as JSON text, passes V8's longest string (~512 Mi characters:
    // 100 tests of 1 MiB of control bytes do) cannot be sent as one body.
    return { delivered: false, retryable: false, error: `cannot serialise the job as JSON: ${(error as Error).message}` };
  }
  try {
    const status = await sendOutbound(destinations, notification.url, {
      method: notification.method,
      headers: notification.headers,
      body: payload,
      signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), stop]),
    });
    const delivered = status >= 200 && status < 300;
    return { delivered, status, retryable: !delivered && notification.retryOnStatus && retryable(status) };
  } catch (error) {
    return { delivered: false, retryable: !(error instanceof OutboundRefusedError), error: (error as Error).message };
  }
}
