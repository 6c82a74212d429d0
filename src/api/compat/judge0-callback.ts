// Judge0's callback_url (IsolateJob#call_callback): when the submission is done, PUT it to the URL
// as JSON, base64-encoded, with the default fields; up to 3 tries of 5 s each, stopping at the
// first answer whatever its status. Sent by a worker's notifier, as Judge0's own workers send it
// (the API composes it for the worker: src/api/notifications.ts), so that an API process that
// restarts meanwhile loses none.
import type { JobRecord, JobRequest } from '../../jobs/model.js';
import type { Notification } from '../../queue/webhook.js';
import type { Judge0Languages } from './judge0-languages.js';
import { readJudge0Front } from './judge0-request-attributes.js';
import { JUDGE0_DEFAULT_FIELDS, judge0Attributes, serializeSubmission } from './judge0-submission.js';

export const CALLBACK_ATTEMPTS = 3;
export const CALLBACK_TIMEOUT_MS = 5000;

/** The submission's callback_url, if it named one. */
export function judge0CallbackUrl(request: JobRequest): string | undefined {
  const url = readJudge0Front(request).callbackUrl;
  return typeof url === 'string' && url !== '' ? url : undefined;
}

/** The callback of a finished Judge0 submission, or undefined when it named no callback_url. */
export function judge0Callback(request: JobRequest, record: JobRecord, languages: Judge0Languages): Notification | undefined {
  const url = judge0CallbackUrl(request);
  if (url === undefined) return undefined;
  return {
    url,
    method: 'PUT',
    body: serializeSubmission(judge0Attributes(record, languages), JUDGE0_DEFAULT_FIELDS, true),
    headers: { 'content-type': 'application/json' },
    retryOnStatus: false,
    attempts: CALLBACK_ATTEMPTS,
    timeoutMs: CALLBACK_TIMEOUT_MS,
    backoffMs: 0,
  };
}
