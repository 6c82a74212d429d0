// What a worker sends when a job has finished, in the terms of the front that accepted it: a /v1
// webhook carries the job as GET /v1/jobs/:id shows it; a Judge0 submission's callback_url gets
// Judge0's PUT. Composed here, beside the views it renders, and handed to the worker by bin
// (the queue knows how to send, not what).
import type { Runtime } from '../images/types.js';
import type { JobRecord, JobRequest } from '../jobs/model.js';
import { webhookNotification, type Notification } from '../queue/webhook.js';
import { judge0Callback } from './compat/judge0-callback.js';
import { Judge0Languages } from './compat/judge0-languages.js';
import { presentJob } from './present.js';

export function jobNotifications(runtimes: readonly Runtime[]): (request: JobRequest, recordOf: () => JobRecord) => Notification | undefined {
  const judge0Languages = new Judge0Languages([...runtimes]);
  return (request, recordOf) => {
    if (typeof request.webhookUrl === 'string' && request.webhookUrl !== '') {
      const record = recordOf();
      return webhookNotification(request.webhookUrl, record.id, presentJob(record));
    }
    if (request.front?.api === 'judge0') return judge0Callback(request, recordOf, judge0Languages);
    return undefined;
  };
}
