// What a worker sends when a job has finished, in the terms of the front that accepted it: a /v1
// webhook carries the job as GET /v1/jobs/:id shows it; a Judge0 submission's callback_url gets
// Judge0's PUT. Composed here, beside the views it renders, and handed to the worker by bin
// (the queue knows how to send, not what).
import type { Runtime } from '../images/types.js';
import type { JobRequest } from '../jobs/model.js';
import type { JobNotifications } from '../queue/notification-queue.js';
import { webhookNotification } from '../queue/webhook.js';
import { judge0Callback, judge0CallbackUrl } from './compat/judge0-callback.js';
import { Judge0Languages } from './compat/judge0-languages.js';
import { presentJob } from './present.js';

const webhookUrl = (request: JobRequest): string | undefined =>
  typeof request.webhookUrl === 'string' && request.webhookUrl !== '' ? request.webhookUrl : undefined;

export function jobNotifications(runtimes: readonly Runtime[]): JobNotifications {
  const judge0Languages = new Judge0Languages([...runtimes]);
  return {
    wanted: (request) => webhookUrl(request) !== undefined || (request.front?.api === 'judge0' && judge0CallbackUrl(request) !== undefined),
    compose: (request, record) => {
      const url = webhookUrl(request);
      if (url !== undefined) return webhookNotification(url, record.id, presentJob(record));
      if (request.front?.api === 'judge0') return judge0Callback(request, record, judge0Languages);
      return undefined;
    },
  };
}
