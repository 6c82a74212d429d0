// Every front under malformed input: each field of a valid request of /v1, Piston and Judge0 in
// turn replaced by values of every JSON type and edge (NUL, huge, fractional, negative, nested),
// removed, or joined by an unknown one; raw bodies under many content types; odd queries. No
// answer may be a 5xx (but Piston's documented 503 for a job that did not finish within the wait:
// no worker runs here), and every job the API accepted must pass the worker's own check (checkSubmission), so
// that none is accepted and then failed. Real Redis, no worker: nothing runs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { admissionProblem } from '../../src/api/submission.js';
import { checkSubmission } from '../../src/executor/check.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { JobRequest } from '../../src/jobs/model.js';
import { OutboundPolicy } from '../../src/queue/outbound.js';
import { recordSubmissions, startService, type ServiceHarness } from './fixtures.js';

const EDGE_VALUES: unknown[] = [
  null, true, false, 0, -1, 0.5, 1.5, 0.0004, 1e308, -1e308, 2 ** 53 + 2, '', ' ', 'x', '\u0000', 'a\u0000b', '💩',
  '1e999', 'NaN', '-1', 'a'.repeat(5000), [], [1], ['a\u0000'], [[[]]], {}, { a: 1 }, { length: 5 }, '__proto__',
  // Objects whose String() throws: a JSON body can carry them.
  { toString: 1 }, { valueOf: 1, toString: 1 },
];

/** The request with each field (at any depth) replaced by each edge value, then removed; then the
 * edge values as the whole body; then the request with an unknown field. */
function mutations(valid: Record<string, unknown>): unknown[] {
  const out: unknown[] = [];
  const walk = (node: unknown, rebuild: (replacement: unknown) => unknown): void => {
    if (node === null || typeof node !== 'object') return;
    for (const key of Object.keys(node)) {
      const withValue = (value: unknown) =>
        rebuild(Array.isArray(node) ? Object.assign([...node], { [key]: value }) : { ...node, [key]: value });
      for (const value of EDGE_VALUES) out.push(withValue(value));
      out.push(rebuild(Array.isArray(node) ? node.filter((_, i) => String(i) !== key) : Object.fromEntries(Object.entries(node).filter(([k]) => k !== key))));
      walk((node as Record<string, unknown>)[key], withValue);
    }
  };
  walk(valid, (body) => body);
  out.push(...EDGE_VALUES, { ...valid, unknownField: 1 });
  return out;
}

const v1 = { language: 'python', source: 'print(1)', stdin: 'x', args: ['a'], limits: { cpuTimeMs: 1000, memoryBytes: 64 << 20 }, tests: [{ stdin: '1', expectedOutput: '1' }] };
const v1Compiled = { language: 'c', files: [{ name: 'main.c', content: 'aW50IG1haW4oKXtyZXR1cm4gMDt9', base64: true }], compileLimits: { cpuTimeMs: 5000, pids: 16 } };
const piston = { language: 'python', version: '*', files: [{ name: 'a.py', content: 'print(1)', encoding: 'utf8' }], stdin: '', args: ['x'], run_timeout: 3000, run_cpu_time: 1000, compile_memory_limit: -1, run_memory_limit: 64 << 20 };
const judge0 = {
  source_code: 'print(1)', language_id: 71, stdin: 'x', expected_output: '1', cpu_time_limit: 2, wall_time_limit: 5, memory_limit: 128000,
  stack_limit: 64000, max_processes_and_or_threads: 60, max_file_size: 1024, number_of_runs: 1, command_line_arguments: 'a b',
};

describe('every front under malformed input', () => {
  let service: ServiceHarness;
  const runtimes = loadRuntimes();
  const policy = { maxFiles: 8, maxTests: 4, maxArgs: 8, maxJobOutputBytes: 64 << 20, webhookDestinations: new OutboundPolicy() };

  /** Every request the fronts handed to the queue (Piston's are cancelled again, unfinished). */
  const submitted: JobRequest[] = [];

  before(async () => {
    // No rate limit in reach: its 429s would answer most of the requests below before any
    // handler saw them (1605 of 3876 did, until this was set), nor a full queue its 503s.
    service = await startService({ runtimes, maxQueuedJobs: 1_000_000, config: { ...policy, maxWaitMs: 20, defaultRequestsPerWindow: 1_000_000 } });
    recordSubmissions(service.jobs, submitted);
  });
  after(() => service.close());

  test('no answer is a 5xx, and every accepted job passes the worker\'s check', async () => {
    const failures: string[] = [];
    const check = (what: string, response: LightMyRequestResponse): void => {
      const pistonUnfinished = response.statusCode === 503 && what.includes('/api/v2/execute') && /did not finish within/.test(response.body);
      if (response.statusCode === 429) failures.push(`429 ${what}: rate limited, never reached its handler`);
      if (response.statusCode >= 500 && !pistonUnfinished) failures.push(`${response.statusCode} ${what} => ${response.body.slice(0, 200)}`);
    };
    const post = async (url: string, payload: string, contentType = 'application/json') => {
      const response = await service.app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } });
      check(`POST ${url} ${payload.slice(0, 120)}`, response);
    };
    const targets: [string, Record<string, unknown>][] = [
      ['/v1/jobs', v1],
      ['/v1/jobs', v1Compiled],
      ['/v1/jobs/batch', { jobs: [v1, v1Compiled] }],
      ['/api/v2/execute', piston],
      ['/submissions', judge0],
      ['/submissions/batch', { submissions: [judge0, judge0] }],
    ];
    for (const [url, valid] of targets) {
      for (const body of mutations(valid)) await post(url, JSON.stringify(body));
    }
    const rawBodies = ['', '{', '[]', 'null', '"x"', '\u0000', `{"a":${'['.repeat(3000)}`, `${JSON.stringify(v1)}garbage`, 'language_id=71&source_code=x&x[y]=1', 'source_code=%ZZ'];
    const contentTypes = ['application/json', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', ''];
    for (const url of ['/v1/jobs', '/v1/jobs/batch', '/api/v2/execute', '/submissions', '/submissions/batch']) {
      for (const body of rawBodies) for (const contentType of contentTypes) await post(url, body, contentType);
    }
    const queries = ['wait=maybe', 'wait=true&timeoutMs=-1', 'wait=true&timeoutMs=1e309', 'outputEncoding=hex', 'base64_encoded=true', 'fields=*', 'fields=__proto__,constructor', 'page=-1&per_page=1e9', '%ZZ=1', 'a[b]=1'];
    for (const url of ['/v1/jobs/x', '/v1/jobs/__proto__', '/submissions/x', '/submissions/batch', '/languages/71', '/languages/-1', '/languages/1e999', '/statuses', '/api/v2/runtimes']) {
      for (const query of ['', ...queries]) {
        for (const method of ['GET', 'DELETE'] as const) check(`${method} ${url}?${query}`, await service.app.inject({ method, url: `${url}?${query}` }));
      }
    }
    assert.deepEqual(failures, []);

    assert.ok(submitted.length > 100, `only ${submitted.length} jobs were accepted: the valid requests should be`);
    for (const request of submitted) {
      const runtime = runtimes.find((candidate) => candidate.id === request.runtimeId);
      assert.ok(runtime, `runtime ${request.runtimeId}`);
      assert.equal(admissionProblem(request, runtime, policy), undefined, JSON.stringify(request).slice(0, 300));
      assert.doesNotThrow(() => checkSubmission(runtime, { fileNames: request.files.map((file) => file.name), ...request }), JSON.stringify(request).slice(0, 300));
    }
  });
});
