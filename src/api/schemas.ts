// The /v1 API's shapes, written once in TypeBox: fastify validates requests with them, shapes
// responses with them, and @fastify/swagger publishes them as the OpenAPI document at /docs.
import { Type, type Static } from 'typebox';
import { FILE_NAME_MAX_BYTES, MAX_LIST_ITEMS, MIN_MEMORY_BYTES, NAME_MAX_BYTES } from '../executor/check.js';

const description = (text: string) => ({ description: text });

/** Longest argument, in characters, for every front (admissionProblem): the kernel bounds all of a
 * program's arguments together by a quarter of its stack limit (E2BIG beyond). */
export const MAX_ARG_CHARS = 4096;

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(description('Stable, machine-readable reason, e.g. "unknown_language".')),
      message: Type.String(description('What was wrong, for a person.')),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'Error', description: 'Every 4xx/5xx answer has this shape.' },
);

// Each at least what the engine takes (every limit of a run is positive: checkLimits), so that an
// out-of-range limit is this schema's 400 naming the field, not the worker's check behind it.
const LIMIT_FIELDS = {
  cpuTimeMs: Type.Optional(Type.Integer({ minimum: 1 })),
  wallTimeMs: Type.Optional(Type.Integer({ minimum: 1 })),
  memoryBytes: Type.Optional(Type.Integer({ minimum: MIN_MEMORY_BYTES })),
  pids: Type.Optional(Type.Integer({ minimum: 1 })),
  outputBytes: Type.Optional(Type.Integer({ minimum: 1 })),
  fileSizeBytes: Type.Optional(Type.Integer({ minimum: 1 })),
  openFiles: Type.Optional(Type.Integer({ minimum: 1 })),
  stackBytes: Type.Optional(Type.Integer({ minimum: 1 })),
  tmpBytes: Type.Optional(Type.Integer({ minimum: 1 })),
  cpuCores: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
};

export const LimitsInput = Type.Object(LIMIT_FIELDS, {
  additionalProperties: false,
  description: "Per-run limits; absent fields take the runtime's defaults, larger than the runtime's maximum is a 400 (limit_above_maximum), as a run limit below its minLimits (limit_below_minimum).",
});

const CompileLimitsInput = Type.Object(LIMIT_FIELDS, {
  additionalProperties: false,
  description: "The compile step's limits, like limits; only for runtimes that have a compile step (400 no_compile_step otherwise).",
});

export const FileInput = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      description: `Relative path inside the work dir: parts of at most ${NAME_MAX_BYTES} bytes (UTF-8), at most ${FILE_NAME_MAX_BYTES} bytes in all, no lone UTF-16 surrogate (400 invalid_file_name).`,
    }),
    content: Type.String(),
    base64: Type.Optional(Type.Boolean({ description: '`content` is base64 (for binary files).' })),
  },
  { additionalProperties: false },
);

export const ComparisonInput = Type.Object(
  {
    mode: Type.Union([Type.Literal('lines'), Type.Literal('exact'), Type.Literal('tokens')], {
      description:
        "lines (the default, Judge0's rule): the same bytes after removing trailing whitespace from each line (NUL, tab, newline, vertical tab, form feed, carriage return, space, as Ruby's rstrip) and trailing empty lines; exact: the same bytes; tokens: the same words (separated by spaces, tabs, newlines and carriage returns), compared byte for byte, as testlib's standard checkers compare.",
    }),
    floatTolerance: Type.Optional(
      Type.Number({
        minimum: 0,
        description:
          'tokens only: two words that are both decimal numbers (1, -2.5, 3e-7) are equal when they differ by at most this, or by at most this times the expected one (1e-6: six digits after the point, or six significant digits of a large number); other words must be equal as text.',
      }),
    ),
  },
  { additionalProperties: false, description: "How each test's stdout is compared with its expectedOutput. Needs tests; not with a checker or an interactor (their judgement decides)." },
);

export const TestInput = Type.Object(
  {
    stdin: Type.Optional(
      Type.String({ description: "The run's stdin (a job with tests takes no stdin of its own); with a checker or an interactor, also its input.txt (an interactor's program reads the interactor instead)." }),
    ),
    expectedOutput: Type.Optional(
      Type.String({
        description:
          "Compared with stdout by the job's comparison (by default ignoring trailing whitespace on each line and trailing empty lines); with a checker or an interactor, given to it as answer.txt instead.",
      }),
    ),
  },
  { additionalProperties: false },
);

const compileArgsInput = (what: string) =>
  Type.Array(Type.String({ maxLength: MAX_ARG_CHARS }), {
    maxItems: MAX_LIST_ITEMS,
    description: `Arguments for ${what} compiler ("-O0", "-DLOCAL", "-std=c11"), placed where the runtime's compile command takes them, after its own flags, so that they override them; only for runtimes that have a compile step (400 no_compile_step otherwise).`,
  });

/** A judge program's fields, as a submission's program has them. */
const judgeProgramInput = (role: 'interactor' | 'checker', description: string) =>
  Type.Object(
    {
      language: Type.String({ minLength: 1, maxLength: 64, description: `The ${role}'s runtime id, language or alias.` }),
      version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      source: Type.Optional(Type.String({ description: "A single source file, written as the runtime's source file name." })),
      files: Type.Optional(Type.Array(FileInput, { minItems: 1, maxItems: MAX_LIST_ITEMS, description: 'Several files; the first is the entry point. Not input.txt, output.txt or answer.txt.' })),
      compileArgs: Type.Optional(compileArgsInput(`the ${role}'s`)),
      limits: Type.Optional(LimitsInput),
      compileLimits: Type.Optional(CompileLimitsInput),
    },
    { additionalProperties: false, description },
  );

export const InteractorInput = judgeProgramInput(
  'interactor',
  "An interactive problem's interactor: run beside the program in every test, the interactor's stdout the program's stdin and the program's stdout its stdin. It is started as `<its run command> input.txt output.txt [answer.txt]` (testlib's interactor arguments): input.txt holds the test's stdin, answer.txt its expectedOutput when the test has one. The test's passed is its judgement by testlib's exit codes: 0 true; 1, 2, 4 or 8 (wrong answer, presentation error, extra output, unexpected end of file) false; anything else null (see tests[].interactor). Needs tests; not with stdin or stderrToStdout.",
);

export const CheckerInput = judgeProgramInput(
  'checker',
  "A checker (a special judge): run after each test whose run ended ok, as `<its run command> input.txt output.txt answer.txt` (testlib's checker arguments): the test's stdin, the program's stdout and the test's expectedOutput (empty when it has none). The test's passed is its judgement by testlib's exit codes, as an interactor's (see tests[].checker), in place of comparing stdout with expectedOutput; null when the run was not ok (the checker did not run). Needs tests; not with interactor.",
);

export const JobSubmission = Type.Object(
  {
    language: Type.String({ minLength: 1, maxLength: 64, description: 'Runtime id, language or alias (see /v1/runtimes).' }),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'The runtime\'s version or a release line it is in, its parts compared as numbers, wildcards last ("3.11" and "3.x" find 3.11.2, "3.1" does not; anything else, "x.11" or "03", names a version exactly); a runtime of one or two parts names a line, found by its releases too ("18.20.4" finds 18.20). The newest match when absent.' })),
    source: Type.Optional(Type.String({ description: "A single source file, written as the runtime's source file name." })),
    files: Type.Optional(Type.Array(FileInput, { minItems: 1, maxItems: MAX_LIST_ITEMS, description: 'Several files; the first is the entry point.' })),
    stdin: Type.Optional(
      Type.String({
        description: "The program's stdin. Not with tests, each of which runs with its own (tests[].stdin): a non-empty stdin beside tests is a 400 (stdin_not_applicable), as beside an interactor (interactor_not_applicable).",
      }),
    ),
    args: Type.Optional(Type.Array(Type.String({ maxLength: MAX_ARG_CHARS }), { maxItems: MAX_LIST_ITEMS })),
    compileArgs: Type.Optional(compileArgsInput('the')),
    limits: Type.Optional(LimitsInput),
    compileLimits: Type.Optional(CompileLimitsInput),
    outputFiles: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        maxItems: MAX_LIST_ITEMS,
        description:
          `Files the program writes in its work dir (/box), relative paths named as files' are (parts of at most ${NAME_MAX_BYTES} bytes, at most ${FILE_NAME_MAX_BYTES} in all), returned with each run (outputFiles of run or of each test), each up to the run's limits.outputBytes and its limits.fileSizeBytes; at most CELLBLOCK_MAX_FILES.`,
      }),
    ),
    stderrToStdout: Type.Optional(
      Type.Boolean({
        description:
          "Each run's stderr is written into its stdout, interleaved as the program wrote them (the result's stderr is then empty); the compile's streams stay apart.",
      }),
    ),
    tests: Type.Optional(Type.Array(TestInput, { minItems: 1, maxItems: MAX_LIST_ITEMS, description: 'Run once per test after one compile.' })),
    comparison: Type.Optional(ComparisonInput),
    stopOnFailure: Type.Optional(
      Type.Boolean({
        description:
          "Run the tests in order and stop after the first that fails: its run's verdict is not ok, or its passed is false (its output did not match, or its checker or interactor said wrong). The tests after it are not run (skippedTests in the result), as online judges stop at the first failing test. A test with nothing to judge it by (passed null) does not stop the job. Needs tests.",
      }),
    ),
    interactor: Type.Optional(InteractorInput),
    checker: Type.Optional(CheckerInput),
    webhookUrl: Type.Optional(Type.String({ maxLength: 2048, description: 'http(s) URL the finished job is POSTed to.' })),
  },
  { additionalProperties: false, $id: 'JobSubmission' },
);
export type JobSubmission = Static<typeof JobSubmission>;

export const BatchSubmission = Type.Object(
  { jobs: Type.Array(JobSubmission, { minItems: 1, maxItems: MAX_LIST_ITEMS }) },
  { additionalProperties: false },
);
export type BatchSubmission = Static<typeof BatchSubmission>;

export const JobIdParams = Type.Object({ id: Type.String({ description: 'Job id as returned by POST /v1/jobs.' }) });

export const OutputEncoding = Type.Union([Type.Literal('utf8'), Type.Literal('base64')], {
  description: 'How stdout/stderr are returned: text (invalid UTF-8 replaced) or base64 bytes.',
});

export const JobQuery = Type.Object({ outputEncoding: Type.Optional(OutputEncoding) }, { additionalProperties: false });

/** GET /v1/live's query: a job's, and the live ticket that may stand for an API key. */
export const LiveQuery = Type.Object(
  {
    outputEncoding: Type.Optional(OutputEncoding),
    ticket: Type.Optional(Type.String({ description: 'A live ticket (POST /v1/live/tickets) in place of an API key header: a browser cannot set headers on a WebSocket.' })),
  },
  { additionalProperties: false },
);

export const LiveTicketView = Type.Object({
  ticket: Type.String({ description: 'For one connection to GET /v1/live (or Piston\'s /api/v2/connect) as ?ticket=, standing for the API key that asked for it.' }),
  expiresInMs: Type.Integer({ description: 'How long it is good for, from now.' }),
});

export const SubmitQuery = Type.Object(
  {
    wait: Type.Optional(Type.Boolean({ description: 'Hold the request until the job is finished (bounded).' })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, description: "Longest wait, in milliseconds, written in decimal digits (1.5 or 1e3 is a 400); capped by the server's maximum." })),
    outputEncoding: Type.Optional(OutputEncoding),
  },
  { additionalProperties: false },
);

/** The query of a /v1 route that takes no parameters (GET /v1/runtimes, POST /v1/live/tickets): an
 * unknown one is a 400 invalid_request, as on every /v1 route, rather than ignored (a misspelt
 * parameter would look taken). */
export const NoQuery = Type.Object({}, { additionalProperties: false });

/** POST /v1/jobs/batch takes no parameters: it answers at once with its jobs' ids, whatever they
 * are asked (SubmitQuery's wait, timeoutMs and outputEncoding are refused, not ignored). */
export const BatchQuery = Type.Object(
  {},
  {
    additionalProperties: false,
    description: "None: a batch is answered at once (202) with its jobs' ids, never waited for; read each with GET /v1/jobs/:id (or give each a webhookUrl).",
  },
);

/** The submission's own headers (the others are HTTP's and the API key's). */
export const SubmitHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x20-\\x7e]+$',
      description:
        "A key of the caller's choosing (a UUID, say) that makes a retried submission safe: while the job it first named is kept (CELLBLOCK_RESULT_TTL_SECONDS after it ends), the same key with the same submission answers that job instead of queueing another; with another submission, 422 idempotency_key_reused. Once that job has expired, the key makes a new job, under the same id (the key's), with a new createdAt. Keys are per API key (without API keys, shared by every caller: use unguessable keys).",
    }),
  ),
});

const NullableInteger = Type.Union([Type.Integer(), Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const Verdict = Type.String({
  description: 'ok, runtime_error, signaled, cpu_time_limit, wall_time_limit, memory_limit, output_limit, cancelled, internal_error (+ compile_error for the job)',
});

/** How a program ended and what it printed: the same fields on a stage and, lifted, on the result. */
const outcomeFields = {
  verdict: Verdict,
  exitCode: NullableInteger,
  signal: NullableInteger,
  signalName: NullableString,
  stdout: Type.String(),
  stderr: Type.String(),
  stdoutTruncated: Type.Boolean(),
  stderrTruncated: Type.Boolean(),
};

const stageFields = {
  ...outcomeFields,
  cpuTimeMs: Type.Number(),
  wallTimeMs: Type.Number(),
  peakMemoryBytes: Type.Number(),
  passed: Type.Optional(
    Type.Union([Type.Boolean(), Type.Null()], {
      description: "Tests only: stdout matched expectedOutput (null: the test had none, or its run did not end ok and was not checked); in a job with an interactor or a checker, its judgement (see interactor, checker).",
    }),
  ),
  error: Type.Optional(
    Type.Object({ step: Type.String(), errno: Type.Integer(), code: Type.String(), message: Type.String() }),
  ),
  cached: Type.Optional(
    Type.Literal(true, {
      description:
        "interactorCompile and checkerCompile only: this job did not run the compile; the worker kept the work dir of the same compile (the judge's files, compileArgs, compileLimits, runtime and image build) from an earlier job, and its tests start from it. The stage's output and metrics are that compile's.",
    }),
  ),
  outputFiles: Type.Optional(
    Type.Array(
      Type.Object({
        name: Type.String(),
        content: Type.Union([Type.String(), Type.Null()], { description: 'As stdout is given (outputEncoding); null when the file could not be read (problem).' }),
        sizeBytes: Type.Number({ description: 'The whole file, of which content may be the start.' }),
        truncated: Type.Boolean({ description: "Longer than the run's outputBytes or its fileSizeBytes, whichever is smaller: content is its start." }),
        problem: Type.Optional(
          Type.Union([Type.Literal('not_found'), Type.Literal('not_a_regular_file')], {
            description: 'not_found: no such file; not_a_regular_file: a directory, a symbolic link or a fifo there (or a link on the way).',
          }),
        ),
      }),
      { description: 'Runs of a job that asked for outputFiles: each file the program left in its work dir, in the asked order.' },
    ),
  ),
};

export const StageView = Type.Object({
  ...stageFields,
  interactor: Type.Optional(
    Type.Object(stageFields, { description: "Tests of an interactive job: the interactor's run (its stdout went to the program: empty; testlib writes its message to stderr)." }),
  ),
  checker: Type.Optional(
    Type.Object(stageFields, { description: "Tests of a checked job whose run ended ok: the checker's run (testlib writes its message to stderr)." }),
  ),
});
export type StageView = Static<typeof StageView>;

export const ResultView = Type.Object({
  ...outcomeFields,
  runtime: Type.Object({ id: Type.String(), language: Type.String(), version: Type.String() }),
  compile: Type.Optional(StageView),
  interactorCompile: Type.Optional(StageView),
  checkerCompile: Type.Optional(StageView),
  failedCompile: Type.Optional(
    Type.Union([Type.Literal('interactorCompile'), Type.Literal('checkerCompile')], {
      description: "The judge program's compile that ended the job (verdict compile_error, or internal_error or cancelled there); absent when it was the program's.",
    }),
  ),
  run: Type.Optional(StageView),
  tests: Type.Optional(Type.Array(StageView, { description: 'The tests run, in order: all of them, unless the job was cancelled or stopOnFailure stopped it (skippedTests).' })),
  skippedTests: Type.Optional(
    Type.Integer({ description: 'With stopOnFailure: how many tests after the one that failed (the last in tests) were not run; absent when none were skipped.' }),
  ),
  metrics: Type.Object(
    {
      cpuTimeMs: Type.Number(),
      wallTimeMs: Type.Number(),
      peakMemoryBytes: Type.Number(),
      queueWaitMs: Type.Number(),
    },
    { description: "CPU and wall time summed over compile and every run; peak memory is the largest; queue wait is accepted → taken. The program's own: an interactor's or a checker's stages are not counted." },
  ),
});
export type ResultView = Static<typeof ResultView>;

export const JobView = Type.Object(
  {
    id: Type.String(),
    status: Type.Union([
      Type.Literal('queued'),
      Type.Literal('running'),
      Type.Literal('done'),
      Type.Literal('failed'),
      Type.Literal('cancelled'),
    ]),
    createdAt: Type.String({ description: "When the API accepted the job. A job's times are Redis's clock, as the process that stamped it reads it (within a few ms), whatever the machines' own clocks say; but for startedAt of a job not completed (see there)." }),
    startedAt: Type.Optional(
      Type.String({ description: 'When the last worker that started the job took it: by Redis\'s clock once the job is done or cancelled as it ran (its result\'s start); while it runs, and on a failed job, by that worker\'s own clock (BullMQ\'s take, whose lock renewals go by it), off by that machine\'s skew. Absent until then, and on a job failed at a take before anything ran there (worker_lost, a live job not run again, cancelled as taken: Redis no longer holds its last run\'s start).' }),
    ),
    finishedAt: Type.Optional(Type.String({ description: "When the job ended (its worker's end; a cancel's, for a job cancelled while queued). It is readable CELLBLOCK_RESULT_TTL_SECONDS from then." })),
    attempts: Type.Optional(
      Type.Integer({ description: 'Workers that started the job (2: its first worker died and it was retried), each take that handed it back counted too (a worker stopping; a host shortage, no sandbox uid or no file descriptor free, for which a job goes back up to 5 times, 1 to 16 s apart, and fails at the sixth such take); on a job failed at a take before anything ran there (worker_lost, a live job not run again, cancelled as taken), the takes before that one (workers that died running it, or handed it back unrun).' }),
    ),
    result: Type.Optional(ResultView),
    failure: Type.Optional(
      Type.Object({
        code: Type.String({
          description:
            "worker_lost (its worker died more often than allowed), result_not_stored (it ran, but Redis, full, refused its result), internal_error (the worker could not run it)",
        }),
        message: Type.String(),
      }),
    ),
  },
  { $id: 'Job' },
);
export type JobView = Static<typeof JobView>;

export const Accepted = Type.Object({ id: Type.String(), status: Type.Literal('queued') });
export const BatchAccepted = Type.Object({ jobs: Type.Array(Accepted) });

const LimitsView = Type.Object({
  cpuTimeMs: Type.Number(),
  wallTimeMs: Type.Number(),
  memoryBytes: Type.Number(),
  pids: Type.Number(),
  outputBytes: Type.Number(),
  fileSizeBytes: Type.Number(),
  openFiles: Type.Number(),
  stackBytes: Type.Number(),
  tmpBytes: Type.Number(),
  cpuCores: Type.Number(),
});

export const RuntimeView = Type.Object({
  id: Type.String(),
  language: Type.String(),
  version: Type.String(),
  aliases: Type.Array(Type.String()),
  compiled: Type.Boolean(),
  sourceFile: Type.String(),
  defaultLimits: LimitsView,
  maxLimits: LimitsView,
  minLimits: Type.Optional(Type.Partial(LimitsView, { description: "Least run limits a job may ask for, where the runtime does not start below them (R's openFiles, Java's stackBytes); absent for most." })),
});
export const RuntimeList = Type.Array(RuntimeView);

export const Health = Type.Object({ status: Type.String() });
export const Readiness = Type.Object({
  status: Type.String({ description: '`ready`, `no_workers` (no live worker), or `unavailable` (Redis is not fit to hold the queue: see `redis`; or the live workers are unknown: `workers` null)' }),
  redis: Type.String({
    description:
      '`ok`; `unreachable` (no answer); `evicting` (its maxmemory-policy is not noeviction: jobs may be dropped); `full` (its used memory is over its maxmemory: it refuses writes, OOM); `refusing_writes` (its last write to disk failed, MISCONF; or it is a replica, READONLY)',
  }),
  workers: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The live workers; null where unknown: no count of them completed within a worker heartbeat TTL (CELLBLOCK_WORKER_HEARTBEAT_TTL_MS)',
  }),
  reason: Type.Optional(
    Type.String({ description: 'What is wrong with Redis, in its own words where it has some (`evicting`, `full`, `refusing_writes`); else why the workers are unknown (`workers` null)' }),
  ),
});
