// Every bad input gets a clear 4xx, never a 500 (the brief's rule, errors.ts's promise), and each
// front's 4xx carries its machine-readable shape: random requests to every route the OpenAPI
// document lists, on a real Redis, with no worker (what is accepted stays queued, and must pass
// the worker's own check). api-fuzz.test.ts walks each field of a valid request through fixed
// edge values one at a time; this one combines: up to three changes at once at any depth of a
// valid submission of each front (a part replaced by a random JSON value, a long, binary or
// control-character string, a huge or fractional number; removed; a random or prototype key
// added: /v1 refuses unknown keys at its schema, /v1 and Judge0 a "__proto__" key at the JSON
// parser, so those reach Piston's handler only); raw bytes or text under several media types to
// any route; random path parameters (the ids of jobs accepted here among them) and query strings;
// an Idempotency-Key on /v1's submissions. fast-check (a property-based test library) makes the
// inputs and, on a failure, shrinks them to a small one and prints it with its seed:
// CELLBLOCK_FUZZ_SEED=<seed> replays it, CELLBLOCK_FUZZ_RUNS=1000 explores longer (default 60:
// ~2,300 requests).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { checkSubmission } from '../../src/executor/check.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { JobRequest } from '../../src/jobs/model.js';
import { OutboundPolicy } from '../../src/queue/outbound.js';
import { recordSubmissions, startService, type ServiceHarness } from './fixtures.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Method = 'GET' | 'POST' | 'DELETE';

interface FuzzRequest {
  method: Method;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/** The scale of each property's runs: RUNS × 3 per submission route, RUNS × 10 over all routes
 * for raw bodies and for path parameters. */
const RUNS = process.env.CELLBLOCK_FUZZ_RUNS ? Number(process.env.CELLBLOCK_FUZZ_RUNS) : 60;
const SEED = process.env.CELLBLOCK_FUZZ_SEED ? { seed: Number(process.env.CELLBLOCK_FUZZ_SEED) } : {};

const limits = { cpuTimeMs: 1000, wallTimeMs: 2000, memoryBytes: 64 * 1024 * 1024, pids: 16, cpuCores: 1 };

/** A valid body of each route that takes one; the mutations start from these. */
const SEEDS: Record<string, Json[]> = {
  'POST /v1/jobs': [
    { language: 'python', source: 'print(input())', stdin: '1\n', args: ['a'], limits, webhookUrl: 'https://hooks.example.com/done' },
    {
      language: 'c',
      version: '12.2.0',
      files: [{ name: 'main.c', content: 'int main(){return 0;}' }, { name: 'data.bin', content: 'AAEC', base64: true }],
      compileArgs: ['-O0'],
      compileLimits: limits,
      tests: [{ stdin: '1', expectedOutput: '1' }, { stdin: '2', expectedOutput: '2.0' }],
      comparison: { mode: 'tokens', floatTolerance: 0.001 },
      stopOnFailure: true,
      outputFiles: ['out.txt'],
    },
    { language: 'python', source: 'print(1)', tests: [{ stdin: '1', expectedOutput: '1' }], checker: { language: 'c', source: 'int main(){return 0;}', limits } },
    { language: 'python', source: 'print(1)', tests: [{ stdin: '1' }], interactor: { language: 'python', source: 'print(2)', limits } },
  ],
  'POST /v1/jobs/batch': [{ jobs: [{ language: 'python', source: 'print(1)' }, { language: 'bash', source: 'echo 1', stderrToStdout: true }] }],
  'POST /v1/live/tickets': [{}],
  'POST /api/v2/execute': [
    {
      language: 'python',
      version: '3.x',
      files: [{ name: 'main.py', content: 'print(1)' }, { name: 'b.bin', content: 'AA==', encoding: 'base64' }],
      stdin: '',
      args: ['x'],
      compile_timeout: 10000,
      run_timeout: 3000,
      compile_cpu_time: 10000,
      run_cpu_time: 3000,
      compile_memory_limit: -1,
      run_memory_limit: 67108864,
    },
  ],
  'POST /submissions': [
    {
      source_code: 'print(input())',
      language_id: 71,
      stdin: '1',
      expected_output: '1',
      cpu_time_limit: 2,
      cpu_extra_time: 0.5,
      wall_time_limit: 5,
      memory_limit: 128000,
      stack_limit: 64000,
      max_file_size: 1024,
      number_of_runs: 1,
      redirect_stderr_to_stdout: false,
      enable_network: false,
      command_line_arguments: 'a b',
      compiler_options: '',
      callback_url: 'https://hooks.example.com/judge0',
    },
  ],
  'POST /submissions/batch': [{ submissions: [{ source_code: 'print(1)', language_id: 71 }, { source_code: 'int main(){}', language_id: 50 }] }],
};

/** Query parameters the routes read, besides random ones. */
const QUERY_NAMES = ['wait', 'timeoutMs', 'outputEncoding', 'base64_encoded', 'fields', 'tokens', 'page', 'per_page', 'ticket', 'x'];

const oddString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '../../etc/passwd', '%', '%zz', 'true', '-1', '1e309', '0x10', 'NaN', '__proto__', 'a'.repeat(5000), '\ud800'),
);
const oddNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, -1, 0.5, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e308, Number.MIN_VALUE),
);
const oddValue: fc.Arbitrary<Json> = fc.oneof(
  oddString,
  oddNumber,
  fc.constantFrom<Json>(null, true, false, [], {}, [[]], { '': null }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);
const oddKey = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'));

/** Every object and array inside a value, with the path to it. */
function containers(value: Json, at: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [];
  const inside = Array.isArray(value) ? value.map((item, i) => containers(item, [...at, i])) : Object.entries(value).map(([k, v]) => containers(v, [...at, k]));
  return [at, ...inside.flat()];
}

interface Mutation {
  container: number;
  member: number;
  kind: 'replace' | 'remove' | 'add';
  key: string;
  value: Json;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  container: fc.nat(),
  member: fc.nat(),
  kind: fc.constantFrom('replace', 'replace', 'remove', 'add'),
  key: oddKey,
  value: oddValue,
});

/** Sets an own member to a copy of `value` (a copy: fast-check may hand the same object to two
 * mutations, which would nest it in itself; defined, not assigned: `o.__proto__ = v` would set
 * the prototype). */
function defineMember(node: Record<string, Json> | Json[], member: string | number, value: Json): void {
  Object.defineProperty(node, member, { value: JSON.parse(JSON.stringify(value)), enumerable: true, configurable: true, writable: true });
}

/** Applies one mutation to a deep copy of `seed` (JSON.parse keeps a "__proto__" key an own property). */
function mutate(seed: Json, changes: Mutation[]): string {
  const body = JSON.parse(JSON.stringify(seed)) as Json;
  for (const change of changes) {
    const paths = containers(body);
    let target = body as Json;
    for (const step of paths[change.container % paths.length]!) target = (target as Record<string | number, Json>)[step]!;
    const node = target as Record<string, Json> | Json[];
    const members = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (change.kind === 'add' || members.length === 0) {
      defineMember(node, Array.isArray(node) ? node.length : change.key, change.value);
      continue;
    }
    const member = members[change.member % members.length]!;
    if (change.kind === 'remove') {
      if (Array.isArray(node)) node.splice(member as number, 1);
      else delete node[member as string];
    } else {
      defineMember(node, member, change.value);
    }
  }
  return JSON.stringify(body);
}

const queryString = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_NAMES), fc.string({ maxLength: 8 })), oddString), { maxLength: 4 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, 'x'))}`).join('&')}`));
// (encodeURIComponent throws on a lone surrogate, which only the constants hold.)

/** A path parameter: random text, percent-encoded, or one of a few sequences a router may trip on
 * (the test's URL parser resolves '..' and '%2e%2e' before the router sees them; 600 characters
 * pass fastify's maxParamLength), or the id of a job accepted here. */
const pathParameter = (acceptedIds: string[]) =>
  fc.oneof(
    fc.string({ minLength: 1, maxLength: 30 }).map((s) => encodeURIComponent(s)),
    fc.constantFrom('%', '%zz', '..', '%2e%2e', '0', '-1', '71', '99999999999999999999', 'a'.repeat(600), '%00', 'batch', 'all'),
    fc.nat().map((i) => acceptedIds[i % acceptedIds.length] ?? 'none'),
  );

const idempotencyHeader = fc.record(
  { 'idempotency-key': fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 }) },
  { requiredKeys: [] },
);

/** A raw body: text, bytes (invalid UTF-8 among them), or a few JSON fragments. */
const rawBody = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom('{', '[]', 'null', '{"a":', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '\u0000', '"', '\ud800'),
);

const MEDIA_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', ''];

describe('the API answers random requests to every route with no 5xx', () => {
  let service: ServiceHarness;
  let routes: { method: Method; path: string }[];
  const runtimes = loadRuntimes();
  const policy = { maxFiles: 8, maxTests: 4, maxArgs: 8, maxJobOutputBytes: 64 << 20, webhookDestinations: new OutboundPolicy() };
  /** Every request the fronts handed to the queue, and the ids their answers gave. */
  const submitted: JobRequest[] = [];
  const acceptedIds: string[] = [];

  before(async () => {
    // No rate limit in reach: its 429s would answer the requests before any handler saw them.
    service = await startService({ runtimes, maxQueuedJobs: 1_000_000, config: { ...policy, maxWaitMs: 20, defaultRequestsPerWindow: 1_000_000 } });
    recordSubmissions(service.jobs, submitted);
    const spec = service.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    routes = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => ({ method: method.toUpperCase() as Method, path })),
    );
  });
  after(() => service?.close());

  async function send(request: FuzzRequest): Promise<LightMyRequestResponse> {
    const { payload, ...rest } = request;
    const response = await service.app.inject({ ...rest, ...(payload === undefined ? {} : { payload }) });
    if (response.statusCode < 300) noteAcceptedIds(response);
    return response;
  }

  /** The job ids (ours) and tokens (Judge0's) an answer names, for the path parameters. */
  function noteAcceptedIds(response: LightMyRequestResponse): void {
    if (acceptedIds.length >= 50) return;
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      return;
    }
    for (const item of Array.isArray(body) ? body : [body]) {
      const { id, token } = (item ?? {}) as { id?: unknown; token?: unknown };
      for (const value of [id, token]) if (typeof value === 'string' && /^[\w-]{21}$/.test(value)) acceptedIds.push(value);
    }
  }

  function checkAnswer(request: FuzzRequest, response: LightMyRequestResponse): void {
    const shown = `${request.method} ${request.url} ${JSON.stringify(request.headers)} ${request.payload?.toString().slice(0, 400) ?? ''}`;
    // The path as the server sees it ('/submissions/..' is '/').
    const pathOnly = new URL(request.url, 'http://localhost').pathname;
    const front = frontOf(pathOnly);
    assert.notEqual(response.statusCode, 429, `rate limited, never reached its handler: ${shown}`);
    // Piston's documented answer for a job not finished within the wait (no worker runs here).
    const pistonUnfinished = front === 'piston' && response.statusCode === 503 && /did not finish within/.test(response.body);
    // /readyz and Judge0's /workers answer 503 while no worker runs (as Judge0's does): none runs here.
    const noWorkers = ['/readyz', '/workers'].includes(pathOnly) && response.statusCode === 503;
    assert.ok(response.statusCode < 500 || pistonUnfinished || noWorkers, `${response.statusCode} for ${shown}: ${response.body.slice(0, 400)}`);
    if (response.statusCode < 400 || noWorkers) return;
    // Listing and deleting submissions: 403 with no body, as Judge0 without AUTHZ_TOKEN answers.
    const judge0Unauthorized = (request.method === 'GET' && pathOnly === '/submissions') || (request.method === 'DELETE' && pathOnly.startsWith('/submissions/'));
    if (judge0Unauthorized && response.statusCode === 403 && response.body === '') return;
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      assert.fail(`${response.statusCode} without a JSON body for ${shown}: ${response.body.slice(0, 200)}`);
    }
    const problem = `${response.statusCode} not in its front's shape for ${shown}: ${response.body.slice(0, 200)}`;
    assert.ok(body !== null && typeof body === 'object', problem);
    const ours = (body as { error?: { code?: unknown; message?: unknown } }).error;
    const inOurShape = typeof ours?.code === 'string' && typeof ours.message === 'string';
    // A URL the router cannot read or route ('/submissions/..' is '/') is refused before any
    // front is known: in our shape everywhere.
    if (['bad_url', 'url_too_long', 'route_not_found'].includes(String(ours?.code)) && inOurShape) return;
    // Ours { error: { code, message } }; Piston's { message }; Judge0's a field's messages (422,
    // Rails' record errors; a batch's, one such object per submission) or { error } ({ status,
    // error } for 404).
    if (front === 'cellblock') {
      assert.ok(inOurShape, problem);
    } else if (front === 'piston') {
      assert.ok(typeof (body as { message?: unknown }).message === 'string', problem);
    } else if (response.statusCode === 422) {
      const recordErrors = (value: unknown) =>
        value !== null && typeof value === 'object' && Object.values(value).length > 0 &&
        Object.values(value).every((messages) => Array.isArray(messages) && messages.every((m) => typeof m === 'string'));
      assert.ok(pathOnly === '/submissions/batch' && Array.isArray(body) ? body.every(recordErrors) : recordErrors(body), problem);
    } else {
      assert.ok(typeof (body as { error?: unknown }).error === 'string', problem);
    }
  }

  function frontOf(pathOnly: string): 'cellblock' | 'piston' | 'judge0' {
    if (pathOnly.startsWith('/api/v2/')) return 'piston';
    const judge0 = /^\/(submissions|statuses|about|version|config_info|workers|languages)(\/|$)/.test(pathOnly);
    return judge0 ? 'judge0' : 'cellblock';
  }

  function concrete(path: string, parameters: string[]): string {
    let i = 0;
    return path.replace(/\{[^}]+\}/g, () => parameters[i++] ?? 'x');
  }

  it('takes each seed as it is', async () => {
    for (const [route, seeds] of Object.entries(SEEDS)) {
      const [method, path] = route.split(' ') as [Method, string];
      assert.ok(routes.some((r) => r.method === method && r.path === path), `${route} is a route of the OpenAPI document`);
      for (const seed of seeds) {
        const response = await send({ method, url: path, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(seed) });
        const pistonUnfinished = response.statusCode === 503 && /did not finish within/.test(response.body);
        assert.ok(response.statusCode < 300 || pistonUnfinished, `${route} ${JSON.stringify(seed).slice(0, 120)}: ${response.statusCode} ${response.body.slice(0, 300)}`);
      }
    }
  });

  it('mutated submissions of every front', async () => {
    for (const [route, seeds] of Object.entries(SEEDS)) {
      const [method, path] = route.split(' ') as [Method, string];
      const headers = route === 'POST /v1/jobs' ? idempotencyHeader : fc.constant({});
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 3 }), queryString, headers, async (seed, changes, query, extra) => {
          const request: FuzzRequest = { method, url: `${path}${query}`, headers: { 'content-type': 'application/json', ...extra }, payload: mutate(seed, changes) };
          checkAnswer(request, await send(request));
        }),
        { numRuns: RUNS * 3, includeErrorInReport: true, ...SEED },
      );
    }
  });

  it('raw bodies of any media type to every route', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.array(pathParameter(acceptedIds), { minLength: 1, maxLength: 2 }),
        rawBody,
        fc.constantFrom(...MEDIA_TYPES),
        queryString,
        async (which, parameters, payload, mediaType, query) => {
          const route = routes[which % routes.length]!;
          const request: FuzzRequest = { method: route.method, url: `${concrete(route.path, parameters)}${query}`, headers: mediaType ? { 'content-type': mediaType } : {} };
          if (route.method !== 'GET') request.payload = payload;
          checkAnswer(request, await send(request));
        },
      ),
      { numRuns: RUNS * 10, includeErrorInReport: true, ...SEED },
    );
  });

  it('random path parameters and query strings on every route', async () => {
    assert.ok(acceptedIds.length > 0, 'jobs were accepted above: their ids are among the parameters');
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(pathParameter(acceptedIds), { minLength: 1, maxLength: 2 }), queryString, async (which, parameters, query) => {
        const route = routes[which % routes.length]!;
        const request: FuzzRequest = { method: route.method, url: `${concrete(route.path, parameters)}${query}`, headers: {} };
        checkAnswer(request, await send(request));
      }),
      { numRuns: RUNS * 10, includeErrorInReport: true, ...SEED },
    );
  });

  it("queued only jobs that pass the worker's own check", () => {
    assert.ok(submitted.length > 20, `only ${submitted.length} jobs were accepted`);
    for (const request of submitted) {
      const runtime = runtimes.find((candidate) => candidate.id === request.runtimeId);
      assert.ok(runtime, `runtime ${request.runtimeId}`);
      assert.doesNotThrow(() => checkSubmission(runtime, { fileNames: request.files.map((file) => file.name), ...request }), JSON.stringify(request).slice(0, 300));
    }
  });
});
