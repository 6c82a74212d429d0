// The Judge0 CE front's routes as the OpenAPI document says them (src/api/openapi.ts): Judge0
// 1.13's requests and answers, their main fields typed, for the document only. The front parses
// its requests as Rails does and renders its answers itself (src/api/judge0.ts): no fastify schema
// checks or serializes them, so that the answers keep every attribute Judge0's have.
import { Type, type TSchema } from 'typebox';
import { jsonAnswer, nullable, type DocumentedResponse, type RouteDocument } from '../openapi.js';


const NullableString = nullable(Type.String());
const NullableInteger = nullable(Type.Integer());
const NullableBoolean = nullable(Type.Boolean());
/** Judge0's decimal columns, seconds as Rails renders them ("0.012", "5.0"). */
const Seconds = nullable(Type.String({ description: 'Seconds, as a decimal string ("0.012", "5.0").' }));

/** Judge0's `{"error": "..."}`: its 400s, and every refusal of the service (a key, the rate limit,
 * a full queue, an unreachable Redis), in Judge0's shape. */
export const Judge0Error = Type.Object({ error: Type.String() }, { description: 'Judge0\'s error: `{"error": message}`.' });

/** Rails' rendering of a validation's errors (422): each failing attribute and its messages. */
const Judge0ValidationErrors = Type.Record(Type.String(), Type.Array(Type.String()), {
  description: 'Rails\' validation errors: each attribute that failed and its messages (`{"language_id": ["language with id 9999 doesn\'t exist"]}`).',
});

/** Rails' rendering of a missing record. */
const Judge0NotFound = Type.Object({ status: Type.Literal(404), error: Type.Literal('Not Found') });

const Judge0Status = Type.Object({ id: Type.Integer(), description: Type.String() });

const Judge0Workers = Type.Array(
  Type.Object({
    queue: Type.String(),
    size: Type.Integer(),
    total: Type.Integer(),
    available: Type.Integer(),
    idle: Type.Integer(),
    working: Type.Integer(),
    paused: Type.Integer(),
    failed: Type.Integer(),
  }),
);

const Token = Type.Object({ token: Type.String({ description: 'The submission\'s token (the job\'s id).' }) }, { additionalProperties: false });

/** A submission as Judge0 renders it: the attributes asked for by `fields` (token, time, memory,
 * stdout, stderr, compile_output, message and status by default; `*` for all). */
const Judge0Submission = Type.Object(
  {
    token: Type.Optional(Type.String()),
    source_code: Type.Optional(NullableString),
    language_id: Type.Optional(NullableInteger),
    language: Type.Optional(nullable(Type.Object({ id: Type.Integer(), name: Type.String() }))),
    stdin: Type.Optional(NullableString),
    expected_output: Type.Optional(NullableString),
    stdout: Type.Optional(NullableString),
    stderr: Type.Optional(NullableString),
    compile_output: Type.Optional(NullableString),
    message: Type.Optional(NullableString),
    status_id: Type.Optional(Type.Integer()),
    status: Type.Optional(Judge0Status),
    time: Type.Optional(Seconds),
    wall_time: Type.Optional(Seconds),
    memory: Type.Optional(nullable(Type.Integer({ description: 'KB.' }))),
    exit_code: Type.Optional(NullableInteger),
    exit_signal: Type.Optional(NullableInteger),
    number_of_runs: Type.Optional(NullableInteger),
    cpu_time_limit: Type.Optional(Seconds),
    cpu_extra_time: Type.Optional(Seconds),
    wall_time_limit: Type.Optional(Seconds),
    memory_limit: Type.Optional(NullableInteger),
    stack_limit: Type.Optional(NullableInteger),
    max_processes_and_or_threads: Type.Optional(NullableInteger),
    max_file_size: Type.Optional(NullableInteger),
    enable_per_process_and_thread_time_limit: Type.Optional(NullableBoolean),
    enable_per_process_and_thread_memory_limit: Type.Optional(NullableBoolean),
    enable_network: Type.Optional(NullableBoolean),
    redirect_stderr_to_stdout: Type.Optional(NullableBoolean),
    compiler_options: Type.Optional(NullableString),
    command_line_arguments: Type.Optional(NullableString),
    callback_url: Type.Optional(NullableString),
    additional_files: Type.Optional(NullableString),
    created_at: Type.Optional(NullableString),
    queued_at: Type.Optional(NullableString),
    started_at: Type.Optional(NullableString),
    finished_at: Type.Optional(NullableString),
    updated_at: Type.Optional(NullableString),
    queue_host: Type.Optional(Type.Null()),
    execution_host: Type.Optional(Type.Null()),
  },
  {
    additionalProperties: true,
    description:
      'The attributes `fields` asks for (token, time, memory, stdout, stderr, compile_output, message and status by default; `*` for all). Text attributes are base64 (Ruby\'s encode64) with base64_encoded=true.',
  },
);

/** A submission as POST /submissions takes it (Rails casts text to numbers and booleans too). */
const Judge0SubmissionInput = Type.Object(
  {
    source_code: Type.String({ description: 'Required (422 `can\'t be blank`); base64 with base64_encoded=true.' }),
    language_id: Type.Integer({ description: 'Required: a language of GET /languages (422 `language with id N doesn\'t exist`).' }),
    compiler_options: Type.Optional(Type.String()),
    command_line_arguments: Type.Optional(Type.String()),
    stdin: Type.Optional(Type.String()),
    expected_output: Type.Optional(Type.String()),
    cpu_time_limit: Type.Optional(Type.Number({ description: 'Seconds.' })),
    cpu_extra_time: Type.Optional(Type.Number({ description: 'Seconds; validated, not applied.' })),
    wall_time_limit: Type.Optional(Type.Number({ description: 'Seconds.' })),
    memory_limit: Type.Optional(Type.Number({ description: 'KB.' })),
    stack_limit: Type.Optional(Type.Number({ description: 'KB.' })),
    max_processes_and_or_threads: Type.Optional(Type.Number()),
    enable_per_process_and_thread_time_limit: Type.Optional(Type.Boolean({ description: 'true is refused (422).' })),
    enable_per_process_and_thread_memory_limit: Type.Optional(Type.Boolean({ description: 'true is refused (422).' })),
    max_file_size: Type.Optional(Type.Number({ description: 'KB.' })),
    redirect_stderr_to_stdout: Type.Optional(Type.Boolean()),
    enable_network: Type.Optional(Type.Boolean({ description: 'true is refused (422).' })),
    number_of_runs: Type.Optional(Type.Number()),
    additional_files: Type.Optional(Type.String({ description: 'A zip, base64.' })),
    callback_url: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

const base64Encoded = Type.Boolean({ description: 'Text attributes in and out as base64 ("true").' });
const fields = Type.String({ description: 'Attributes to answer, comma separated, or `*` (400 for an unknown one).' });
const TokenParams = Type.Object({ token: Type.String({ description: "The submission's token." }) });

const empty = (description: string): DocumentedResponse => ({ description });
const badRequest = jsonAnswer('Judge0\'s 400: `fields` names an unknown attribute, or text that is not UTF-8 without base64_encoded=true', Judge0Error);
const unavailable = jsonAnswer('A full queue (Judge0\'s "queue is full"), an unreachable Redis, or workers behind an upgrade; with Retry-After', Judge0Error);
const notFound = jsonAnswer('Rails\' not found: no such submission (or its result expired), no such language', Judge0NotFound);

/** A Judge0 route's document: what it does, then where it is told field by field; its errors in
 * Judge0's shape (src/api/openapi.ts). */
const judge0Route = (what: string, document: Omit<RouteDocument, 'errorBody' | 'description'>): RouteDocument => ({
  description: `${what} As Judge0 CE 1.13 answers it: docs/compat.md, "Judge0 CE", says what is served and how, field by field.`,
  errorBody: Judge0Error,
  ...document,
});

/** Each Judge0 route's document, by what it does. */
export const judge0Documents = {
  create: judge0Route('Queues a submission (201 `{"token"}`); with wait=true, answers once it has finished (at most CELLBLOCK_MAX_WAIT_MS), else as it is then. Parameters come from the query and the body alike (Rails\' params).', {
    querystring: Type.Object({ base64_encoded: Type.Optional(base64Encoded), wait: Type.Optional(Type.Boolean({ description: 'Answer with the submission once it has finished (at most CELLBLOCK_MAX_WAIT_MS), else as it is then.' })), fields: Type.Optional(fields) }),
    body: Judge0SubmissionInput,
    consumes: ['application/json', 'application/x-www-form-urlencoded'],
    responses: {
      201: jsonAnswer('Queued: `{"token"}`; with wait=true, the submission (`{"token", "error"}` when its text is not UTF-8)', Type.Union([Token, Judge0Submission, Type.Object({ token: Type.String(), error: Type.String() }, { additionalProperties: false })])),
      400: badRequest,
      422: jsonAnswer("Rails' validation errors: each failing attribute's messages", Judge0ValidationErrors),
      503: unavailable,
    },
  }),
  createBatch: judge0Route('Queues each valid submission of the batch (at most 20): a token for each, the validation errors of the others, in order.', {
    querystring: Type.Object({ base64_encoded: Type.Optional(base64Encoded) }),
    body: Type.Object({ submissions: Type.Array(Judge0SubmissionInput, { description: 'At most 20.' }) }),
    consumes: ['application/json'],
    responses: {
      201: jsonAnswer('One entry per submission, in order: `{"token"}`, or its validation errors', Type.Array(Type.Union([Token, Judge0ValidationErrors]))),
      400: jsonAnswer('No submissions, more than 20, or more valid ones than may ever wait (max_queue_size)', Judge0Error),
      422: jsonAnswer('None of the submissions is valid: the validation errors of each', Type.Array(Judge0ValidationErrors)),
      503: unavailable,
    },
  }),
  readBatch: judge0Route('The submissions of the tokens asked for, in order (null for an unknown one).', {
    querystring: Type.Object({ tokens: Type.Optional(Type.String({ description: 'Comma separated (or in a `tokens` header); at most 20.' })), base64_encoded: Type.Optional(base64Encoded), fields: Type.Optional(fields) }),
    headers: Type.Object({ tokens: Type.Optional(Type.String({ description: 'The tokens, in place of the query parameter.' })) }),
    responses: {
      200: jsonAnswer('One entry per token, in order: the submission, or null for an unknown one', Type.Object({ submissions: Type.Array(nullable(Judge0Submission)) })),
      400: jsonAnswer('No tokens, more than 20, an unknown field, or text that is not UTF-8 without base64_encoded=true', Judge0Error),
      503: unavailable,
    },
  }),
  read: judge0Route('A submission: the attributes `fields` asks for.', {
    params: TokenParams,
    querystring: Type.Object({ base64_encoded: Type.Optional(base64Encoded), fields: Type.Optional(fields) }),
    responses: { 200: jsonAnswer('The submission', Judge0Submission), 400: badRequest, 404: notFound, 503: unavailable },
  }),
  list: judge0Route('Not served: Judge0 without an authorization token answers 403.', { responses: { 403: empty('Judge0 without an authorization token: not allowed') } }),
  delete: judge0Route('Not served: Judge0 without an authorization token answers 403.', { params: TokenParams, responses: { 403: empty('Judge0 without an authorization token: not allowed') } }),
  statuses: judge0Route('Judge0\'s status table, exactly.', { responses: { 200: jsonAnswer("Judge0's statuses, 1 In Queue to 14 Exec Format Error", Type.Array(Judge0Status)) } }),
  about: judge0Route('The Judge0 API version followed; homepage, source_code and maintainer null (a Judge0 operator\'s settings).', {
    responses: {
      200: jsonAnswer('The Judge0 API version followed', Type.Object({ version: Type.String(), homepage: NullableString, source_code: NullableString, maintainer: NullableString })),
    },
  }),
  version: judge0Route('The Judge0 API version followed, as plain text.', { responses: { 200: { description: 'The Judge0 API version followed', mediaType: 'text/plain', schema: Type.String() } } }),
  configInfo: judge0Route('Judge0\'s configuration fields; limits are per runtime here, so each default and maximum is the smallest over the listed languages.', {
    responses: {
      200: jsonAnswer(
        "Judge0's configuration fields: each default and maximum the smallest over the languages",
        Type.Object(
          {
            enable_wait_result: Type.Boolean(),
            enable_compiler_options: Type.Boolean(),
            allowed_languages_for_compile_options: Type.Array(Type.String()),
            enable_command_line_arguments: Type.Boolean(),
            max_queue_size: Type.Integer(),
            cpu_time_limit: Type.Number(),
            max_cpu_time_limit: Type.Number(),
            wall_time_limit: Type.Number(),
            max_wall_time_limit: Type.Number(),
            memory_limit: Type.Integer(),
            max_memory_limit: Type.Integer(),
            stack_limit: Type.Integer(),
            max_stack_limit: Type.Integer(),
            max_processes_and_or_threads: Type.Integer(),
            max_max_processes_and_or_threads: Type.Integer(),
            max_file_size: Type.Integer(),
            max_max_file_size: Type.Integer(),
            number_of_runs: Type.Integer(),
            max_number_of_runs: Type.Integer(),
            enable_batched_submissions: Type.Boolean(),
            max_submission_batch_size: Type.Integer(),
            enable_callbacks: Type.Boolean(),
            callbacks_max_tries: Type.Integer(),
            callbacks_timeout: Type.Number(),
            enable_additional_files: Type.Boolean(),
            max_extract_size: Type.Integer(),
            enable_network: Type.Boolean(),
          },
          { additionalProperties: true },
        ),
      ),
    },
  }),
  workers: judge0Route('One queue, `cellblock`; 503 with Retry-After when no worker is live (Judge0: 500).', {
    responses: {
      200: jsonAnswer("The queue and its live workers' slots", Judge0Workers),
      503: jsonAnswer('No live worker (the queue as for 200), or Redis unreachable; with Retry-After', Type.Union([Judge0Workers, Judge0Error])),
    },
  }),
  languages: judge0Route('The languages run here, under Judge0\'s well-known ids.', { responses: { 200: jsonAnswer('The languages run here, under Judge0\'s ids', Type.Array(Type.Object({ id: Type.Integer(), name: Type.String() }))) } }),
  allLanguages: judge0Route('The languages run here, under Judge0\'s well-known ids (none archived).', {
    responses: { 200: jsonAnswer('The languages run here, none archived', Type.Array(Type.Object({ id: Type.Integer(), name: Type.String(), is_archived: Type.Boolean() }))) },
  }),
  language: judge0Route('A language: its source file and its compile and run commands as they run (`%s` where compiler_options go).', {
    params: Type.Object({ id: Type.String({ description: 'A Judge0 language id.' }) }),
    responses: {
      200: jsonAnswer(
        'The language: its file and commands as they run',
        Type.Object({ id: Type.Integer(), name: Type.String(), is_archived: Type.Boolean(), source_file: Type.String(), compile_cmd: NullableString, run_cmd: Type.String() }),
      ),
      404: notFound,
    },
  }),
} satisfies Record<string, RouteDocument>;
