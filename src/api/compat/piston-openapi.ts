// The Piston v2 front's routes as the OpenAPI document says them (src/api/openapi.ts): Piston's
// requests and answers, their main fields typed, for the document only. The front checks its
// requests as Piston does, with Piston's messages, and renders its answers itself
// (src/api/piston.ts): no fastify schema checks or serializes them.
import { Type, type TSchema } from 'typebox';
import { jsonAnswer, LIVE_SOCKET_OPENED, nullable, type DocumentedResponse, type RouteDocument } from '../openapi.js';

/** Piston's `{"message": "..."}`: its refusals, and every refusal of the service (a key, the rate
 * limit, a full queue, an unreachable Redis), in Piston's shape. */
export const PistonError = Type.Object({ message: Type.String() }, { description: 'Piston\'s error: `{"message": text}`.' });


const PistonStage = Type.Object(
  {
    stdout: Type.String(),
    stderr: Type.String(),
    output: Type.String({ description: 'stdout, then stderr.' }),
    code: nullable(Type.Integer()),
    signal: nullable(Type.String()),
    message: nullable(Type.String()),
    status: nullable(Type.String({ description: "isolate's: RE, SG, TO, OL, EL, XX." })),
    cpu_time: Type.Number({ description: 'ms.' }),
    wall_time: Type.Number({ description: 'ms.' }),
    memory: Type.Number({ description: 'Bytes, the peak.' }),
  },
  { additionalProperties: true },
);

const PistonFile = Type.Object(
  {
    name: Type.Optional(Type.String()),
    content: Type.String(),
    encoding: Type.Optional(Type.Union([Type.Literal('base64'), Type.Literal('hex'), Type.Literal('utf8')])),
  },
  { additionalProperties: true },
);

const limit = (unit: string) => Type.Optional(Type.Number({ description: `${unit}; absent or 0: the runtime's default.` }));

const PistonExecute = Type.Object(
  {
    language: Type.String({ description: 'A language or alias of GET /runtimes.' }),
    version: Type.String({ description: 'A SemVer range.' }),
    files: Type.Array(PistonFile, { description: 'The first utf8 file is the entry point.' }),
    stdin: Type.Optional(Type.String()),
    args: Type.Optional(Type.Array(Type.String())),
    compile_timeout: limit('Wall time, ms'),
    run_timeout: limit('Wall time, ms'),
    compile_cpu_time: limit('CPU time, ms'),
    run_cpu_time: limit('CPU time, ms'),
    compile_memory_limit: limit('Bytes (-1: the default)'),
    run_memory_limit: limit('Bytes (-1: the default)'),
  },
  { additionalProperties: true },
);


/** A Piston route's document: what it does, then where it is told field by field; its errors in
 * Piston's shape (src/api/openapi.ts). */
const pistonRoute = (what: string, document: Omit<RouteDocument, 'errorBody' | 'description'>): RouteDocument => ({
  description: `${what} As Piston v2 answers it: docs/compat.md, "Piston v2", says what is served and how, field by field.`,
  errorBody: PistonError,
  ...document,
});

/** Each Piston route's document. */
/** A runtime's version as the front shows it (pistonVersion). */
const PistonVersion = Type.String({ description: "Three-part SemVer, as Piston's package versions are: a runtime naming a release line (`18.20`) shows its first release (`18.20.0`), which finds it when sent back." });

export const pistonDocuments = {
  runtimes: pistonRoute('The runtimes, one per runtime (its id among its aliases where it differs from its language; never its language itself).', {
    responses: { 200: jsonAnswer('The runtimes', Type.Array(Type.Object({ language: Type.String(), version: PistonVersion, aliases: Type.Array(Type.String()) }))) },
  }),
  packages: pistonRoute('Every runtime, installed: runtimes are built into images.', {
    responses: {
      200: jsonAnswer('The runtimes as packages', Type.Array(Type.Object({ language: Type.String(), language_version: PistonVersion, installed: Type.Boolean() }))),
    },
  }),
  execute: pistonRoute('Runs the files and answers once the job has finished (at most CELLBLOCK_MAX_WAIT_MS).', {
    body: PistonExecute,
    consumes: ['application/json', 'text/plain'],
    responses: {
      200: jsonAnswer('The run, and the compile where the runtime compiles', Type.Object({ language: Type.String(), version: PistonVersion, run: PistonStage, compile: Type.Optional(PistonStage) }, { additionalProperties: true })),
      400: jsonAnswer("Piston's refusal of the request, in its words (`{\"message\": \"python-9 runtime is unknown\"}`)", PistonError),
      500: jsonAnswer('The job failed in the service (as Piston answers a job that throws)', PistonError),
      503: jsonAnswer('The job did not finish within the wait, or before the API began to stop (it is cancelled), an unreachable Redis, or workers behind an upgrade; with Retry-After', PistonError),
    },
  }),
  connect: pistonRoute(
    "A live job over a WebSocket: the client sends init (an execute body), data and signal; the server runtime, stage, data and exit, then closes with 4999. A request without the upgrade is 426.",
    {
      responses: {
        101: LIVE_SOCKET_OPENED,
        426: jsonAnswer('Not a WebSocket upgrade', PistonError),
        429: jsonAnswer('This client holds all its live sockets (CELLBLOCK_MAX_LIVE_SESSIONS_PER_CLIENT, or its key\'s own cap), or its rate limit is used up; with Retry-After', PistonError),
        503: jsonAnswer('Redis unreachable, or the API stopping; with Retry-After', PistonError),
      },
    },
  ),
} satisfies Record<string, RouteDocument>;
