// Every bad input gets a clear 4xx, never a 500 (the brief's rule, errors.ts's promise), and each
// front's 4xx carries its machine-readable shape: random requests to every route the OpenAPI
// document lists, on a real Redis, with no worker (what is accepted stays queued).
// api-fuzz.test.ts walks each field of a valid request through fixed edge values one at a time;
// this one combines: up to three changes at once at any depth (a part replaced by a random JSON
// value, long or control-character string, huge or fractional number; removed; or a random or
// prototype key added), raw text under several media types to any route, random path parameters
// and query strings, an Idempotency-Key header. fast-check (a property-based test library) makes
// the inputs and, on a failure, shrinks them to a small one and prints it with its seed
// (`fc.assert`'s `seed` option replays it). CELLBLOCK_FUZZ_RUNS=1000 explores longer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { startService, type ServiceHarness } from './fixtures.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Method = 'GET' | 'POST' | 'DELETE';

interface FuzzRequest {
  method: Method;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

/** Runs per route and kind of input: enough to reach every field of each seed a few times. */
const RUNS = process.env.CELLBLOCK_FUZZ_RUNS ? Number(process.env.CELLBLOCK_FUZZ_RUNS) : 60;

const limits = { cpuTimeMs: 1000, wallTimeMs: 2000, memoryBytes: 64 * 1024 * 1024, pids: 16, cpuCores: 1 };

/** A valid body of each route that takes one; the mutations start from these. */
const SEEDS: Record<string, Json[]> = {
  'POST /v1/jobs': [
    { language: 'python', source: 'print(input())', stdin: '1\n', args: ['a'], limits, webhookUrl: 'http://127.0.0.1:9/hook' },
    {
      language: 'c',
      version: '12.2.0',
      files: [{ name: 'main.c', content: 'int main(){return 0;}' }, { name: 'data.bin', content: 'AAEC', base64: true }],
      compileArgs: ['-O0'],
      compileLimits: limits,
      tests: [{ stdin: '1', expectedOutput: '1' }, { stdin: '2', expectedOutput: '2.0' }],
      comparison: { mode: 'float', floatTolerance: 0.001 },
      stopOnFailure: true,
      outputFiles: ['out.txt'],
      checker: { language: 'python', source: 'import sys' },
    },
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
      callback_url: 'http://127.0.0.1:9/cb',
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
  let body = JSON.parse(JSON.stringify(seed)) as Json;
  for (const change of changes) {
    const paths = containers(body);
    if (paths.length === 0) {
      body = change.value;
      continue;
    }
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

/** A path parameter: random text, percent-encoded, or one of a few sequences a router may trip on. */
const pathParameter = fc.oneof(
  fc.string({ minLength: 1, maxLength: 30 }).map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, 'x'))),
  fc.constantFrom('%', '%zz', '..', '%2e%2e', '0', '-1', '71', '99999999999999999999', 'a'.repeat(600), '%00', 'batch', 'all'),
);

const headers = fc.record(
  { 'idempotency-key': fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 }) },
  { requiredKeys: [] },
);

const MEDIA_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', ''];

describe('the API answers random requests to every route with no 5xx', () => {
  let service: ServiceHarness;
  let routes: { method: Method; path: string }[];

  before(async () => {
    service = await startService({ runtimes: loadRuntimes(), maxQueuedJobs: 1_000_000, config: { maxWaitMs: 20, defaultRequestsPerWindow: 1_000_000 } });
    const spec = service.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    routes = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => ({ method: method.toUpperCase() as Method, path })),
    );
  });
  after(() => service?.close());

  async function send(request: FuzzRequest): Promise<LightMyRequestResponse> {
    const { payload, ...rest } = request;
    return service.app.inject({ ...rest, ...(payload === undefined ? {} : { payload }) });
  }

  function checkAnswer(request: FuzzRequest, response: LightMyRequestResponse): void {
    const shown = `${request.method} ${request.url} ${JSON.stringify(request.headers)} ${request.payload?.slice(0, 400) ?? ''}`;
    const front = frontOf(request.url);
    // Piston's documented answer for a job not finished within the wait (no worker runs here).
    const pistonUnfinished = front === 'piston' && response.statusCode === 503 && /did not finish within/.test(response.body);
    // /readyz and Judge0's /workers answer 503 while no worker runs (as Judge0's does): none runs here.
    const noWorkers = ['/readyz', '/workers'].includes(request.url.split('?')[0]!) && response.statusCode === 503;
    assert.ok(response.statusCode < 500 || pistonUnfinished || noWorkers, `${response.statusCode} for ${shown}: ${response.body.slice(0, 400)}`);
    if (response.statusCode < 400 || noWorkers) return;
    // Judge0's list routes answer 403 with no body, as Judge0 does without AUTHZ_TOKEN.
    if (front === 'judge0' && response.statusCode === 403 && response.body === '') return;
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      assert.fail(`${response.statusCode} without a JSON body for ${shown}: ${response.body.slice(0, 200)}`);
    }
    assert.ok(body !== null && typeof body === 'object', `${response.statusCode} body is no object for ${shown}`);
    // Each front answers in its own shape: ours { error: { code, message } }, Piston's
    // { message }, Judge0's a field's messages or { status, error }.
    if (front === 'cellblock') {
      const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
      assert.ok(typeof error?.code === 'string' && typeof error.message === 'string', `${response.statusCode} without error.code and .message for ${shown}: ${response.body.slice(0, 200)}`);
    } else if (front === 'piston') {
      assert.ok(typeof (body as { message?: unknown }).message === 'string', `${response.statusCode} without a message for ${shown}: ${response.body.slice(0, 200)}`);
    }
  }

  function frontOf(url: string): 'cellblock' | 'piston' | 'judge0' {
    if (url.startsWith('/api/v2/')) return 'piston';
    if (url.startsWith('/v1/') || ['/healthz', '/readyz', '/metrics'].includes(url.split('?')[0]!)) return 'cellblock';
    return 'judge0';
  }

  function concrete(path: string, parameters: string[]): string {
    let i = 0;
    return path.replace(/\{[^}]+\}/g, () => parameters[i++] ?? 'x');
  }

  it('mutated submissions of every front', async () => {
    for (const [route, seeds] of Object.entries(SEEDS)) {
      const [method, path] = route.split(' ') as [Method, string];
      assert.ok(routes.some((r) => r.method === method && r.path === path), `${route} is a route of the OpenAPI document`);
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 3 }), queryString, headers, async (seed, changes, query, extra) => {
          const request: FuzzRequest = { method, url: `${path}${query}`, headers: { 'content-type': 'application/json', ...extra }, payload: mutate(seed, changes) };
          checkAnswer(request, await send(request));
        }),
        { numRuns: RUNS * 3, includeErrorInReport: true },
      );
    }
  });

  it('raw bodies of any media type to every route', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.array(pathParameter, { minLength: 1, maxLength: 2 }),
        fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('{', '[]', 'null', '{"a":', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '\u0000', '"')),
        fc.constantFrom(...MEDIA_TYPES),
        queryString,
        async (which, parameters, payload, mediaType, query) => {
          const route = routes[which % routes.length]!;
          const request: FuzzRequest = { method: route.method, url: `${concrete(route.path, parameters)}${query}`, headers: mediaType ? { 'content-type': mediaType } : {} };
          if (route.method !== 'GET') request.payload = payload;
          checkAnswer(request, await send(request));
        },
      ),
      { numRuns: RUNS * 10, includeErrorInReport: true },
    );
  });

  it('random path parameters and query strings on every route', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(pathParameter, { minLength: 1, maxLength: 2 }), queryString, async (which, parameters, query) => {
        const route = routes[which % routes.length]!;
        const request: FuzzRequest = { method: route.method, url: `${concrete(route.path, parameters)}${query}`, headers: {} };
        checkAnswer(request, await send(request));
      }),
      { numRuns: RUNS * 10, includeErrorInReport: true },
    );
  });
});
