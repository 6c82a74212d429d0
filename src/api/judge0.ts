// Judge0 CE compatible API (judge0/judge0 v1.13, app/controllers/submissions_controller.rb and
// friends), served at the root beside our own: submissions (single, batch, wait, fields, base64,
// callback_url), languages and statuses. Translation only: submissions become JobRequests on the
// same queue and workers; tokens are our job ids.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { JobRecord, JobRequest, JobTest } from '../jobs/model.js';
import { API_KEY_SECURITY_SCHEMES } from './auth.js';
import { JUDGE0_API_VERSION, judge0About, judge0ConfigInfo, judge0Workers } from './compat/judge0-info.js';
import { Judge0Languages } from './compat/judge0-languages.js';
import { JUDGE0_MAX_EXTRACT_BYTES, readAdditionalFiles } from './compat/judge0-additional-files.js';
import { judge0Fields, Judge0ValidationError, translateJudge0Submission, type Judge0Submission } from './compat/judge0-request.js';
import { judge0Documents } from './compat/judge0-openapi.js';
import { JUDGE0_STATUS_LIST } from './compat/judge0-statuses.js';
import {
  Judge0BadRequestError,
  NOT_UTF8_MESSAGE,
  judge0Attributes,
  parseFields,
  serializeSubmission,
} from './compat/judge0-submission.js';
import { DEFAULT_MAX_WAIT_MS, serviceErrorStatus, type CompatPluginOptions } from './compat/plugin-options.js';
import { compileArgv, defaultStageLimits, runArgv } from '../executor/check.js';
import { BatchAboveQueueMaximumError, QueueUnavailableError } from '../queue/errors.js';
import { admissionProblem } from './submission.js';

export type { CompatPluginOptions } from './compat/plugin-options.js';

/** Config::MAX_SUBMISSION_BATCH_SIZE. */
export const JUDGE0_MAX_BATCH_SIZE = 20;

/** The header Judge0 reads its authentication token from (AUTHN_HEADER's default): clients of a
 * self-hosted Judge0 send their key there, so the Judge0 routes take an API key from it too, and
 * as a query parameter of that name, as Judge0 does. */
export const JUDGE0_AUTHN_HEADER = API_KEY_SECURITY_SCHEMES['X-Auth-Token'].name;

/** The header clients of the hosted Judge0 (sold through RapidAPI) send their key in, beside
 * X-RapidAPI-Host (ignored): the Judge0 routes take an API key from it too, so that such a client
 * needs only a new base URL. A header only, as RapidAPI's clients send it. */
export const RAPIDAPI_KEY_HEADER = API_KEY_SECURITY_SCHEMES['X-RapidAPI-Key'].name;

/** Rails' rendering of a missing record (ActiveRecord::RecordNotFound). */
const NOT_FOUND = { status: 404, error: 'Not Found' };

/** The bytes `text` takes inside a JSON document (its escapes, without the quotes); 0 for none. */
function jsonTextBytes(text: string | undefined): number {
  return text === undefined ? 0 : Buffer.byteLength(JSON.stringify(text)) - 2;
}

type Params = Record<string, unknown>;

/** Rails merges query and body parameters into one `params`; the body wins. */
function paramsOf(request: FastifyRequest): Params {
  const body = request.body !== null && typeof request.body === 'object' && !Array.isArray(request.body) ? request.body : {};
  return { ...(request.query as Params), ...(body as Params) };
}

/** Judge0 tests `params[:x] == "true"`; a JSON `true` is taken too. */
const flag = (params: Params, name: string): boolean => params[name] === 'true' || params[name] === true;

export const judge0Plugin: FastifyPluginAsync<CompatPluginOptions> = async (app, options) => {
  const { jobs } = options;
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  const languages = new Judge0Languages(options.runtimes);
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, apiKeyHeaders: [JUDGE0_AUTHN_HEADER, RAPIDAPI_KEY_HEADER], apiKeyQueryParameter: JUDGE0_AUTHN_HEADER };
  });

  // Rails takes form-encoded bodies as well as JSON; flat `key=value` pairs are what a form-posting
  // client sends for one submission (Rails' nested `submissions[][...]` keys are not parsed).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  app.setErrorHandler((error, request, reply: FastifyReply) => {
    if (error instanceof Judge0ValidationError) return reply.code(422).send(error.errors);
    if (error instanceof Judge0BadRequestError) return reply.code(400).send({ error: error.message });
    // More valid submissions than may ever wait: Judge0 answers 503 "queue is full" (its
    // check_queue_size), which no retry gets past; said as its batch size's refusal is.
    if (error instanceof BatchAboveQueueMaximumError) {
      return reply.code(400).send({ error: `number of submissions in a batch should be less than or equal to ${error.maxQueuedJobs} (max_queue_size)` });
    }
    const status = serviceErrorStatus(error);
    if (status) {
      if (status.retryAfterSeconds !== undefined) reply.header('retry-after', String(status.retryAfterSeconds));
      // Judge0 answers a full queue with 503 "queue is full" (check_queue_size).
      if ((error as Error).name === 'QueueFullError') return reply.code(503).send({ error: 'queue is full' });
      return reply.code(status.statusCode).send({ error: (error as Error).message });
    }
    request.log.error({ err: error }, 'judge0 front: unexpected error');
    return reply.code(500).send({ error: 'internal error' });
  });

  const render = (record: JobRecord, params: Params) =>
    serializeSubmission(judge0Attributes(record, languages), parseFields(params.fields), flag(params, 'base64_encoded'));

  const maxUnpackedBytes = Math.min(JUDGE0_MAX_EXTRACT_BYTES, options.maxExpansionBytes);
  /** A submission translated and past the last check before queueing (admissionProblem), whose
   * refusal is filed as Rails files a validation's: under the attribute it is about, else `base`.
   * `budget`: the bytes the request's jobs may still hold beyond what its body carried
   * (options.maxExpansionBytes for them all): archives unpacked, and a stdin and expected output
   * stored once per run (number_of_runs). Charged only for a submission that is accepted. */
  const translate = async (params: unknown, base64Encoded: boolean, budget: { bytes: number }): Promise<Judge0Submission> => {
    const rawFiles = params !== null && typeof params === 'object' ? (params as Params).additional_files : undefined;
    const additional = await readAdditionalFiles(rawFiles, options.policy.maxFiles, Math.min(maxUnpackedBytes, budget.bytes));
    const submission = translateJudge0Submission(params, base64Encoded, languages, additional, options.policy.maxTests);
    const problem = admissionProblem(submission.request, submission.language.runtime, options.policy, judge0Fields);
    // Under the attribute it is about, as Rails files a validation's error; `base` where it is
    // about none alone (the output the runs could store, the worker's own check).
    if (problem !== undefined) throw new Judge0ValidationError({ [problem.field ?? 'base']: [problem.reason] });
    // A host name is checked where it is resolved, as the callback is sent.
    const refusal = submission.callbackUrl === undefined ? undefined : options.policy.webhookDestinations.refusalOf(new URL(submission.callbackUrl));
    if (refusal) throw new Judge0ValidationError({ callback_url: ['is not a permitted destination'] });
    const unpacked = additional && 'files' in additional ? additional.unpackedBytes : 0;
    const { tests } = submission.request;
    // Each run's test as Redis stores it, in JSON: its stdin (base64) and its expected output
    // (text, escaped as JSON escapes it: a control byte takes six, or base64 where it is not UTF-8).
    const storedBytesPerRun = (test: JobTest) =>
      Buffer.byteLength(test.stdinBase64) + jsonTextBytes(test.expectedOutput) + Buffer.byteLength(test.expectedOutputBase64 ?? '');
    const repeatedBytes = tests && tests.length > 1 ? (tests.length - 1) * storedBytesPerRun(tests[0]!) : 0;
    if (unpacked + repeatedBytes > budget.bytes) {
      throw new Judge0ValidationError({
        base: [`${tests?.length ?? 1} runs store the stdin and expected_output once each, ${repeatedBytes} bytes beyond the first, more than the ${budget.bytes} bytes this request may still add to what it sent`],
      });
    }
    budget.bytes -= unpacked + repeatedBytes;
    return submission;
  };

  app.post('/submissions', { schema: { tags: ['judge0'], summary: 'Judge0: create a submission' }, config: { openapi: judge0Documents.create } }, async (request, reply) => {
    const params = paramsOf(request);
    const fields = parseFields(params.fields); // checked before anything is queued, as Judge0 does
    const submission = await translate(params, flag(params, 'base64_encoded'), { bytes: options.maxExpansionBytes });
    const token = await jobs.submit(submission.request);
    reply.code(201);
    if (!flag(params, 'wait')) return { token };
    let record;
    try {
      record = (await jobs.wait(token, maxWaitMs)) ?? (await jobs.get(token));
    } catch (error) {
      // Accepted, then Redis went away for the whole wait: the token, as without wait, rather
      // than a 503 that invites a second submission of the same job.
      if (!(error instanceof QueueUnavailableError)) throw error;
      request.log.warn({ jobId: token }, 'redis unavailable while waiting for the submission; answering with its token');
      return { token };
    }
    if (record === undefined) return { token };
    try {
      return serializeSubmission(judge0Attributes(record, languages), fields, flag(params, 'base64_encoded'));
    } catch (error) {
      if (error instanceof Judge0BadRequestError && error.message === NOT_UTF8_MESSAGE) return { token, error: error.message };
      throw error;
    }
  });

  app.post('/submissions/batch', { schema: { tags: ['judge0'], summary: 'Judge0: create submissions' }, config: { openapi: judge0Documents.createBatch } }, async (request, reply) => {
    const params = paramsOf(request);
    const items = Array.isArray(params.submissions) ? params.submissions : [];
    if (items.length > JUDGE0_MAX_BATCH_SIZE) {
      throw new Judge0BadRequestError(`number of submissions in a batch should be less than or equal to ${JUDGE0_MAX_BATCH_SIZE}`);
    }
    if (items.length === 0) throw new Judge0BadRequestError('there should be at least one submission in a batch');
    const base64Encoded = flag(params, 'base64_encoded');
    // One after another: they share the request's budget.
    const budget = { bytes: options.maxExpansionBytes };
    const translated: (Judge0Submission | Judge0ValidationError)[] = [];
    for (const item of items as unknown[]) {
      try {
        translated.push(await translate(item, base64Encoded, budget));
      } catch (error) {
        if (!(error instanceof Judge0ValidationError)) throw error;
        translated.push(error);
      }
    }
    const valid = translated.filter((item): item is Judge0Submission => !(item instanceof Judge0ValidationError));
    const tokens = valid.length > 0 ? await jobs.submitBatch(valid.map((item): JobRequest => item.request)) : [];
    const tokenOf = new Map(valid.map((item, i) => [item, tokens[i]!]));
    reply.code(valid.length > 0 ? 201 : 422);
    return translated.map((item) => (item instanceof Judge0ValidationError ? item.errors : { token: tokenOf.get(item) }));
  });

  app.get('/submissions/batch', { schema: { tags: ['judge0'], summary: 'Judge0: get submissions' }, config: { openapi: judge0Documents.readBatch } }, async (request) => {
    const params = paramsOf(request);
    const header = request.headers.tokens;
    // As Ruby's String#split(","): an empty token between two commas stays (its place answers
    // null, so that the answers line up with the tokens asked for), trailing empty ones go.
    const tokens = String(header ?? params.tokens ?? '')
      .trim()
      .split(',');
    while (tokens.at(-1) === '') tokens.pop();
    if (tokens.length > JUDGE0_MAX_BATCH_SIZE) {
      throw new Judge0BadRequestError(`number of submissions in a batch should be less than or equal to ${JUDGE0_MAX_BATCH_SIZE}`);
    }
    if (tokens.length === 0) throw new Judge0BadRequestError('there should be at least one submission in a batch');
    const records = await Promise.all(tokens.map((token) => jobs.get(token)));
    try {
      return { submissions: records.map((record) => (record === undefined ? null : render(record, params))) };
    } catch (error) {
      if (error instanceof Judge0BadRequestError && error.message === NOT_UTF8_MESSAGE) {
        throw new Judge0BadRequestError(
          'some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter',
        );
      }
      throw error;
    }
  });

  app.get<{ Params: { token: string } }>(
    '/submissions/:token',
    { schema: { tags: ['judge0'], summary: 'Judge0: get a submission' }, config: { openapi: judge0Documents.read } },
    async (request, reply) => {
      const params = paramsOf(request);
      parseFields(params.fields);
      const record = await jobs.get(request.params.token);
      if (record === undefined) return reply.code(404).send(NOT_FOUND);
      return render(record, params);
    },
  );

  // Listing and deleting submissions need Judge0's authorization token, which this service does
  // not have: Judge0 without AUTHZ_TOKEN answers 403 to both.
  app.get('/submissions', { schema: { tags: ['judge0'], summary: 'Judge0: list submissions (not authorized)' }, config: { openapi: judge0Documents.list } }, async (_request, reply) =>
    reply.code(403).send(),
  );
  app.delete('/submissions/:token', { schema: { tags: ['judge0'], summary: 'Judge0: delete a submission (not authorized)' }, config: { openapi: judge0Documents.delete } }, async (_request, reply) =>
    reply.code(403).send(),
  );

  app.get('/statuses', { schema: { tags: ['judge0'], summary: 'Judge0: statuses' }, config: { openapi: judge0Documents.statuses } }, async () => JUDGE0_STATUS_LIST);
  app.get('/about', { schema: { tags: ['judge0'], summary: 'Judge0: about' }, config: { openapi: judge0Documents.about } }, async () => judge0About());
  // Judge0's info#version: the version as plain text.
  app.get('/version', { schema: { tags: ['judge0'], summary: 'Judge0: version' }, config: { openapi: judge0Documents.version } }, async (_request, reply) =>
    reply.type('text/plain; charset=utf-8').send(JUDGE0_API_VERSION),
  );
  const configInfo = judge0ConfigInfo({
    languages,
    maxQueuedJobs: options.maxQueuedJobs,
    maxTests: options.policy.maxTests,
    maxBatchSize: JUDGE0_MAX_BATCH_SIZE,
    maxExtractBytes: maxUnpackedBytes,
  });
  app.get('/config_info', { schema: { tags: ['judge0'], summary: 'Judge0: configuration' }, config: { openapi: judge0Documents.configInfo } }, async () => configInfo);
  app.get('/workers', { schema: { tags: ['judge0'], summary: 'Judge0: workers' }, config: { openapi: judge0Documents.workers } }, async (_request, reply) => {
    const [workers, counts] = await Promise.all([jobs.liveWorkers(), jobs.counts()]);
    const { status, body } = judge0Workers(workers, counts);
    if (status === 503) reply.header('retry-after', '5');
    return reply.code(status).send(body);
  });

  const languageList = async () => languages.listed.map(({ id, name }) => ({ id, name }));
  app.get('/languages', { schema: { tags: ['judge0'], summary: 'Judge0: active languages' }, config: { openapi: judge0Documents.languages } }, languageList);
  app.get('/languages/all', { schema: { tags: ['judge0'], summary: 'Judge0: all languages' }, config: { openapi: judge0Documents.allLanguages } }, async () =>
    languages.listed.map(({ id, name }) => ({ id, name, is_archived: false })),
  );
  app.get<{ Params: { id: string } }>('/languages/:id', { schema: { tags: ['judge0'], summary: 'Judge0: a language' }, config: { openapi: judge0Documents.language } }, async (request, reply) => {
    const id = Number(request.params.id);
    const language = Number.isInteger(id) ? languages.byLanguageId(id) : undefined;
    if (language === undefined) return reply.code(404).send(NOT_FOUND);
    const { runtime, sourceFile } = language;
    const limits = defaultStageLimits(runtime);
    return {
      id,
      name: language.name,
      is_archived: false,
      source_file: sourceFile,
      // As they run a Judge0 submission: its one file is source_file; compiler_options go where
      // Judge0's compile_cmd has them, its `%s`. With the language's default limits: a
      // submission's own memory_limit changes what a stage is told of it (Java's -Xmx).
      compile_cmd: runtime.compile ? compileArgv(runtime.compile, [sourceFile], ['%s'], limits.compile!).join(' ') : null,
      run_cmd: runArgv(runtime.run.argv, [sourceFile], [], limits.run).join(' '),
    };
  });
};
