// /v1/jobs: submit (one or a batch), read, wait, cancel.
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyError, FastifyReply } from 'fastify';
import type { Runtime } from '../../images/types.js';
import type { JobRecord } from '../../jobs/model.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import { ApiError, badRequest, sendError, toApiError } from '../errors.js';
import { jsonTextStream, STREAMED_JSON_MIN_CHARS, stringChars } from '../json-stream.js';
import { presentJob, type OutputEncoding } from '../present.js';
import {
  Accepted,
  BatchAccepted,
  BatchQuery,
  BatchSubmission,
  ErrorBody,
  JobIdParams,
  JobQuery,
  JobSubmission,
  JobView,
  SubmitHeaders,
  SubmitQuery,
} from '../schemas.js';
import type { JobService } from '../service.js';
import { toJobRequest, type SubmissionPolicy } from '../submission.js';

export interface JobRoutesOptions {
  jobs: JobService;
  runtimes: Runtime[];
  policy: SubmissionPolicy & { maxBatchJobs: number; maxWaitMs: number };
}

/** The job's view as the answer's body: as JSON text made piece by piece where its outputs are
 * large (json-stream.ts), so that the API never holds that text whole. */
function sendView(reply: FastifyReply, record: JobRecord, encoding: OutputEncoding | undefined): FastifyReply {
  const view = presentJob(record, encoding);
  if (stringChars(view) < STREAMED_JSON_MIN_CHARS) return reply.send(view);
  return reply.type('application/json; charset=utf-8').send(jsonTextStream(view));
}

const isFinished = (record: JobRecord) => record.status === 'done' || record.status === 'failed' || record.status === 'cancelled';

const notFound = (id: string) => new ApiError(404, 'job_not_found', `no job "${id}" (unknown, or its result has expired)`);

/** A batch the schema refused, with the job its issues are in (`details.index`), as the checks
 * after the schema name the job they refuse: where they are in several jobs, the first of them,
 * and all in `details.indexes`; none where an issue is the batch's own (no `jobs`, an unknown
 * field beside it). */
function withBatchIndex(error: FastifyError, refusal: ApiError): ApiError {
  if (error.validationContext !== 'body' || !error.validation || refusal.code !== 'invalid_request') return refusal;
  const indexes = error.validation.map((issue) => /^\/jobs\/(\d+)(?:\/|$)/.exec(issue.instancePath ?? '')?.[1]);
  if (indexes.length === 0 || indexes.some((index) => index === undefined)) return refusal;
  const jobs = [...new Set(indexes.map(Number))].sort((a, b) => a - b);
  const details = { ...refusal.details, index: jobs[0], ...(jobs.length > 1 ? { indexes: jobs } : {}) };
  return new ApiError(refusal.statusCode, refusal.code, refusal.message, details);
}

/** POST /v1/jobs's query parameters: the batch route refuses them saying so. */
const SUBMIT_ONLY_PARAMETERS = Object.keys(SubmitQuery.properties);

/** The errors each route answers itself; those of every route (a rate limit's 429, a body's 413,
 * ...) the OpenAPI document adds (src/api/openapi.ts). */
const submitErrors = { 400: ErrorBody, 404: ErrorBody, 406: ErrorBody, 422: ErrorBody, 429: ErrorBody, 503: ErrorBody };
const batchErrors = { 400: ErrorBody, 429: ErrorBody, 503: ErrorBody };
const oneJobErrors = { 400: ErrorBody, 404: ErrorBody, 406: ErrorBody, 503: ErrorBody };

export const jobRoutes: FastifyPluginAsyncTypebox<JobRoutesOptions> = async (app, { jobs, runtimes, policy }) => {
  // Bodies are JSON. Fastify would hand a text/plain body to the schema as a string, which then
  // answered 400 "body must be object"; any other type is a 415 (unsupported_media_type).
  app.removeContentTypeParser('text/plain');
  app.post(
    '/jobs',
    {
      schema: {
        summary: 'Submit a job',
        description:
          'Queues a job (202). With ?wait=true the answer waits for the result, up to the server maximum: 200 when finished, else 202 with the current state (at once, too, when the API begins to stop). A retry under the same Idempotency-Key answers the job as it is now: without wait, its view as GET /v1/jobs/:id shows it (200 once it has finished, else 202); with wait, as a first try would be answered.',
        tags: ['jobs'],
        body: JobSubmission,
        querystring: SubmitQuery,
        headers: SubmitHeaders,
        response: { 200: JobView, 202: Type.Union([JobView, Accepted]), ...submitErrors },
      },
    },
    async (request, reply) => {
      const jobRequest = toJobRequest(request.body, runtimes, policy);
      const idempotencyKey = request.headers['idempotency-key'];
      // Scoped by the caller's API key, so that two callers' keys never name one job.
      const { id, replay } =
        idempotencyKey === undefined
          ? { id: await jobs.submit(jobRequest), replay: false }
          : await jobs.submitOnce(jobRequest, `${request.apiKey?.key ?? ''}\0${idempotencyKey}`);
      request.log.info({ jobId: id, runtimeId: jobRequest.runtimeId, ...(replay ? { replay } : {}) }, 'job accepted');
      if (!request.query.wait) {
        if (!replay) return reply.code(202).send({ id, status: 'queued' as const });
        // A retry under an Idempotency-Key: its job may have run, or been cancelled, since the
        // first try was answered. Answered as it is now, as ?wait=true answers it.
        const record = await jobs.get(id);
        if (!record) throw notFound(id);
        return sendView(reply.code(isFinished(record) ? 200 : 202), record, request.query.outputEncoding);
      }
      const timeoutMs = Math.min(request.query.timeoutMs ?? policy.maxWaitMs, policy.maxWaitMs);
      let record: JobRecord | undefined;
      try {
        record = await jobs.wait(id, timeoutMs);
      } catch (error) {
        // Accepted, then Redis went away for the whole wait: the job is safe, and the caller
        // needs its id to poll for it rather than a 503 that invites a duplicate submission.
        if (!(error instanceof QueueUnavailableError)) throw error;
        request.log.warn({ jobId: id }, 'redis unavailable while waiting for the job; answering with its id');
        return reply.code(202).send({ id, status: 'queued' as const });
      }
      if (!record) throw notFound(id);
      return sendView(reply.code(isFinished(record) ? 200 : 202), record, request.query.outputEncoding);
    },
  );

  app.post(
    '/jobs/batch',
    {
      schema: {
        summary: 'Submit several jobs at once',
        description:
          "All or nothing: one invalid job refuses the batch, naming its index. Answered at once with the jobs' ids: no wait, no Idempotency-Key. More jobs than may ever wait at once (CELLBLOCK_MAX_QUEUED_JOBS) are refused: 400 batch_above_queue_maximum.",
        tags: ['jobs'],
        body: BatchSubmission,
        querystring: BatchQuery,
        response: { 202: BatchAccepted, ...batchErrors },
      },
      errorHandler: (error, request, reply) => sendError(reply, withBatchIndex(error, toApiError(error, request))),
      // Before the schema's own refusal, which would not say why POST /v1/jobs's parameters are not
      // taken here.
      preValidation: async (request) => {
        const named = Object.keys(request.query as object).filter((name) => SUBMIT_ONLY_PARAMETERS.includes(name));
        if (named.length === 0) return;
        throw badRequest(
          'invalid_request',
          `querystring: POST /v1/jobs/batch takes no ${named.join(', ')} (POST /v1/jobs does): a batch is answered at once with its jobs' ids, never waited for; read each with GET /v1/jobs/:id, or give each a webhookUrl`,
          { issues: [{ path: 'querystring', message: `must not have additional properties (${named.join(', ')})` }] },
        );
      },
    },
    async (request, reply) => {
      if (request.headers['idempotency-key'] !== undefined) {
        throw new ApiError(400, 'idempotency_key_unsupported', 'Idempotency-Key is taken by POST /v1/jobs only; a batch is not submitted once per key');
      }
      const submissions = request.body.jobs;
      if (submissions.length > policy.maxBatchJobs) {
        throw new ApiError(400, 'batch_too_large', `${submissions.length} jobs; at most ${policy.maxBatchJobs} per batch`, {
          maximum: policy.maxBatchJobs,
        });
      }
      const jobRequests = submissions.map((submission, index) => {
        try {
          return toJobRequest(submission, runtimes, policy);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          throw new ApiError(error.statusCode, error.code, `jobs[${index}]: ${error.message}`, { ...error.details, index });
        }
      });
      const ids = await jobs.submitBatch(jobRequests);
      request.log.info({ jobIds: ids }, 'batch accepted');
      return reply.code(202).send({ jobs: ids.map((id) => ({ id, status: 'queued' as const })) });
    },
  );

  /** GET and DELETE on one job share their shape: an id in, the job's view out. */
  const oneJobRoute = (method: 'GET' | 'DELETE', schema: { summary: string; description?: string }, action: (id: string) => Promise<JobRecord | undefined>) =>
    app.route({
      method,
      url: '/jobs/:id',
      schema: { ...schema, tags: ['jobs'], params: JobIdParams, querystring: JobQuery, response: { 200: JobView, ...oneJobErrors } },
      handler: async (request, reply) => {
        const { id } = request.params;
        // The client answers an id of no job's shape as unknown (isJobId), before any Redis call.
        const record = await action(id);
        if (!record) throw notFound(id);
        request.log.info({ jobId: id, status: record.status }, method === 'GET' ? 'job read' : 'job cancel requested');
        return sendView(reply, record, request.query.outputEncoding);
      },
    });

  oneJobRoute('GET', { summary: 'Read a job: its status and, once finished, its result' }, (id) => jobs.get(id));
  oneJobRoute(
    'DELETE',
    {
      summary: 'Cancel a job',
      description: 'A queued job never runs; a running one is killed (verdict "cancelled"). A finished job is left as it is.',
    },
    (id) => jobs.cancel(id),
  );
};
