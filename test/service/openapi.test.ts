// The OpenAPI document (/docs/json) against what the service answers: real answers of every
// front, successes and errors, each checked against the document's entry for its route and
// status (its body by the schema there, with ajv; the Retry-After and X-RateLimit-* headers it
// carries documented there). An answer of a status the document does not list fails, as does a
// body the schema there refuses: what a client generated from the document would trip on. Real
// Redis, no worker: a finished job is the job service's answer replaced (test/compat/fixtures.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import { JUDGE0_ATTRIBUTES } from '../../src/api/compat/judge0-submission.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { JobRecord } from '../../src/jobs/model.js';
import { BullJobClient } from '../../src/queue/client.js';
import { QueueFullError, QueueUnavailableError } from '../../src/queue/errors.js';
import { done, stage } from '../compat/fixtures.js';
import { listen, startService, type ServiceHarness } from './fixtures.js';

/** An answer, as inject gives it or as read off a socket. */
interface Answer {
  statusCode: number;
  headers: IncomingHttpHeaders | Record<string, string | string[] | number | undefined>;
  body: string;
}

/** The headers whose documentation is checked wherever they are sent. */
const CHECKED_HEADERS = ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'];

/** A JSON pointer's part, in a URI fragment. */
const pointer = (part: string) => encodeURIComponent(part.replace(/~/g, '~0').replace(/\//g, '~1'));

/** Checks answers against a document: `conforms(answer, 'GET', '/v1/jobs/{id}')`. */
class DocumentCheck {
  private readonly ajv = new Ajv({ strict: false, validateSchema: false, allErrors: true });
  /** Header values are text: read as the documented type. */
  private readonly headerAjv = new Ajv({ strict: false, coerceTypes: true });
  private readonly compiled = new Map<string, ValidateFunction>();
  /** Each route and status checked, `GET /v1/jobs/{id} 200`. */
  readonly seen = new Set<string>();

  constructor(readonly document: any) {
    this.ajv.addSchema(document, 'openapi');
  }

  conforms(answer: Answer, method: string, path: string): void {
    const where = `${method} ${path} ${answer.statusCode}`;
    const operation = this.document.paths[path]?.[method.toLowerCase()];
    assert.ok(operation, `${method} ${path} is not in the document`);
    const documented = operation.responses[String(answer.statusCode)];
    assert.ok(documented, `${where}: the document lists only ${Object.keys(operation.responses).join(', ')} (body ${answer.body.slice(0, 300)})`);
    const mediaType = String(answer.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (answer.body === '') {
      assert.equal(documented.content, undefined, `${where}: an empty body, where the document says ${JSON.stringify(Object.keys(documented.content ?? {}))}`);
    } else {
      const media = documented.content?.[mediaType];
      assert.ok(media, `${where}: a body of ${mediaType}, where the document says ${JSON.stringify(Object.keys(documented.content ?? {}))}`);
      if (mediaType === 'application/json') {
        const key = `openapi#/paths/${pointer(path)}/${method.toLowerCase()}/responses/${answer.statusCode}/content/${pointer(mediaType)}/schema`;
        let validate = this.compiled.get(key);
        if (!validate) this.compiled.set(key, (validate = this.ajv.compile({ $ref: key })));
        const body: unknown = JSON.parse(answer.body);
        assert.ok(validate(body), `${where}: the body does not match the document: ${this.ajv.errorsText(validate.errors)}\n${answer.body.slice(0, 600)}`);
      } else {
        assert.equal(media.schema?.type, 'string', `${where}: ${mediaType} is text`);
      }
    }
    // README: 429 and 503 carry Retry-After, on every front.
    if (answer.statusCode === 429 || answer.statusCode === 503) assert.ok(answer.headers['retry-after'] !== undefined, `${where}: no Retry-After`);
    for (const header of CHECKED_HEADERS) {
      const value = answer.headers[header];
      if (value === undefined) continue;
      const entry = Object.entries((documented.headers ?? {}) as Record<string, { schema: object }>).find(([name]) => name.toLowerCase() === header);
      assert.ok(entry, `${where}: sends ${header}, which the document does not say`);
      const holder = { value };
      assert.ok(this.headerAjv.validate({ type: 'object', properties: { value: entry[1].schema } }, holder), `${where}: ${header}: ${String(value)} is not ${JSON.stringify(entry[1].schema)}`);
    }
    this.seen.add(where);
  }
}

const KEY = 'openapi-test-key-0';
const LIMITED_KEY = 'openapi-one-request';
const LIVE_KEY = 'openapi-live-key-0';
const PISTON_LIVE_KEY = 'openapi-piston-live';
const keyed = { 'x-api-key': KEY };

/** An upgrade to a WebSocket as a client asks for it: its 101 (the socket then held open, to be
 * destroyed by the caller), or the answer that refused it. */
function upgrade(url: string, headers: Record<string, string>): Promise<Answer & { socket?: Socket }> {
  return new Promise((resolve, reject) => {
    // A connection of its own: one a refused upgrade left to the agent's pool may be closed under it.
    const request = httpRequest(url, {
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), ...headers },
    });
    request.on('upgrade', (response, socket) => resolve({ statusCode: response.statusCode!, headers: response.headers, body: '', socket: socket as Socket }));
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ statusCode: response.statusCode!, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** A request written to a socket as is (what inject cannot send: headers past Node's limit), and
 * the answer read back until the server closes the connection. */
function rawRequest(port: number, text: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text));
    let raw = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (raw += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = raw.split('\r\n\r\n', 2);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      resolve({ statusCode: Number(statusLine.split(' ')[1]), headers, body });
    });
  });
}

describe('the OpenAPI document says what the service answers', () => {
  let service: ServiceHarness;
  let check: DocumentCheck;
  let baseUrl: string;
  const runtimes = loadRuntimes();
  const python = runtimes.find((runtime) => runtime.id === 'python')!;
  const inject = (method: 'GET' | 'POST' | 'DELETE', url: string, options: { payload?: unknown; headers?: Record<string, string> } = {}) =>
    service.app.inject({ method, url, headers: { ...keyed, ...options.headers }, ...(options.payload === undefined ? {} : { payload: options.payload as object }) });
  /** Asks, checks the answer against the document, and checks its status is the one expected. */
  const answers = async (expected: number, method: 'GET' | 'POST' | 'DELETE', path: string, url: string, options?: Parameters<typeof inject>[2]) => {
    const answer = await inject(method, url, options);
    assert.equal(answer.statusCode, expected, `${method} ${url}: ${answer.body.slice(0, 300)}`);
    check.conforms(answer, method, path);
    return answer;
  };
  /** The job service answering `name` as `replacement` does, for `run`. */
  const replacing = async <K extends keyof BullJobClient>(name: K, replacement: BullJobClient[K], run: () => Promise<void>) => {
    (service.jobs as unknown as Record<string, unknown>)[name] = replacement;
    try {
      await run();
    } finally {
      delete (service.jobs as unknown as Record<string, unknown>)[name];
    }
  };
  /** The job `id` as a worker would leave it: its request as queued, its result a run's. */
  const finished = async (id: string): Promise<JobRecord> => {
    const queued = await BullJobClient.prototype.get.call(service.jobs, id);
    return { ...queued, ...done({ run: stage({ stdout: 'hi\n' }) }, python), id };
  };

  before(async () => {
    service = await startService({
      runtimes,
      config: {
        apiKeys: [
          { key: KEY, requestsPerWindow: 10_000 },
          { key: LIMITED_KEY, requestsPerWindow: 1 },
          { key: LIVE_KEY, requestsPerWindow: 100, maxLiveSessions: 1 },
          { key: PISTON_LIVE_KEY, requestsPerWindow: 100, maxLiveSessions: 1 },
        ],
        rateLimitWindowMs: 60_000,
        maxWaitMs: 300,
        bodyLimitBytes: 256 * 1024,
      },
    });
    baseUrl = await listen(service);
    const document = await service.app.inject({ url: '/docs/json' });
    assert.equal(document.statusCode, 200);
    check = new DocumentCheck(document.json());
  });
  after(() => service?.close());

  test('health, readiness and metrics', async () => {
    check.conforms(await service.app.inject({ url: '/healthz' }), 'GET', '/healthz');
    const ready = await service.app.inject({ url: '/readyz' });
    assert.equal(ready.statusCode, 503, 'no worker here');
    check.conforms(ready, 'GET', '/readyz');
    const metrics = await service.app.inject({ url: '/metrics' });
    assert.match(String(metrics.headers['content-type']), /^text\/plain/);
    check.conforms(metrics, 'GET', '/metrics');
    // Node's HTTP parser, before any route: headers past its limit.
    const port = Number(new URL(baseUrl).port);
    const big = await rawRequest(port, `GET /v1/runtimes HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(big.statusCode, 431);
    check.conforms(big, 'GET', '/v1/runtimes');
    const bigJudge0 = await rawRequest(port, `GET /languages HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`);
    check.conforms(bigJudge0, 'GET', '/languages');
  });

  test('/v1: runtimes, jobs and batches, their refusals', async () => {
    await answers(200, 'GET', '/v1/runtimes', '/v1/runtimes');
    await answers(400, 'GET', '/v1/runtimes', '/v1/runtimes?verbose=1');
    check.conforms(await service.app.inject({ url: '/v1/runtimes' }), 'GET', '/v1/runtimes'); // 401
    await answers(415, 'GET', '/v1/runtimes', '/v1/runtimes', { headers: { 'content-encoding': 'gzip' } });
    const hello = { language: 'python', source: 'print(1)' };
    const queued = await answers(202, 'POST', '/v1/jobs', '/v1/jobs', { payload: hello });
    const id = (queued.json() as { id: string }).id;
    await answers(400, 'POST', '/v1/jobs', '/v1/jobs?wait=true&timeoutMs=1.5', { payload: hello });
    await answers(400, 'POST', '/v1/jobs', '/v1/jobs', { payload: '{"language":', headers: { 'content-type': 'application/json' } });
    await answers(413, 'POST', '/v1/jobs', '/v1/jobs', { payload: { ...hello, stdin: 'x'.repeat(300 * 1024) } });
    await answers(415, 'POST', '/v1/jobs', '/v1/jobs', { payload: 'print(1)', headers: { 'content-type': 'text/x-python' } });
    await answers(202, 'POST', '/v1/jobs', '/v1/jobs', { payload: hello, headers: { 'idempotency-key': 'openapi-once' } });
    await answers(422, 'POST', '/v1/jobs', '/v1/jobs', { payload: { ...hello, stdin: 'other' }, headers: { 'idempotency-key': 'openapi-once' } });
    await replacing('wait', finished, async () => {
      await answers(200, 'POST', '/v1/jobs', '/v1/jobs?wait=true', { payload: hello });
    });
    await replacing('submit', async () => Promise.reject(new QueueFullError(5, 5)), async () => {
      await answers(429, 'POST', '/v1/jobs', '/v1/jobs', { payload: hello });
    });
    await replacing('submit', async () => Promise.reject(new QueueUnavailableError()), async () => {
      await answers(503, 'POST', '/v1/jobs', '/v1/jobs', { payload: hello });
    });
    await answers(202, 'POST', '/v1/jobs/batch', '/v1/jobs/batch', { payload: { jobs: [hello] } });
    const batchRefused = await answers(400, 'POST', '/v1/jobs/batch', '/v1/jobs/batch', { payload: { jobs: [hello, { language: 'python', source: 1 }] } });
    assert.equal(batchRefused.json().error.details.index, 1);
    await answers(200, 'GET', '/v1/jobs/{id}', `/v1/jobs/${id}`);
    await replacing('get', finished, async () => {
      const view = await answers(200, 'GET', '/v1/jobs/{id}', `/v1/jobs/${id}`);
      assert.equal(view.json().result.run.stdout, 'hi\n');
    });
    await answers(404, 'GET', '/v1/jobs/{id}', '/v1/jobs/no-such-job');
    const tooLong = await answers(414, 'GET', '/v1/jobs/{id}', `/v1/jobs/${'a'.repeat(3000)}`);
    assert.ok(tooLong.json().error.message.length < 300, tooLong.json().error.message);
    await answers(414, 'DELETE', '/v1/jobs/{id}', `/v1/jobs/${'a'.repeat(3000)}`);
    await answers(400, 'GET', '/v1/jobs/{id}', '/v1/jobs/%E0%A4%A');
    await answers(200, 'DELETE', '/v1/jobs/{id}', `/v1/jobs/${id}`);
  });

  test('/v1/live and its tickets: the upgrade, its refusals', async () => {
    await answers(201, 'POST', '/v1/live/tickets', '/v1/live/tickets');
    await answers(413, 'POST', '/v1/live/tickets', '/v1/live/tickets', { payload: { padding: 'x'.repeat(300 * 1024) } });
    await answers(426, 'GET', '/v1/live', '/v1/live');
    const opened = await upgrade(`${baseUrl}/v1/live`, { 'x-api-key': LIVE_KEY });
    try {
      check.conforms(opened, 'GET', '/v1/live');
      assert.equal(opened.statusCode, 101);
      const refused = await upgrade(`${baseUrl}/v1/live`, { 'x-api-key': LIVE_KEY });
      assert.equal(refused.statusCode, 429);
      assert.equal(JSON.parse(refused.body).error.code, 'too_many_live_sessions');
      assert.equal(refused.headers['retry-after'], '10', 'README: 429 and 503 carry Retry-After');
      check.conforms(refused, 'GET', '/v1/live');
    } finally {
      opened.socket?.destroy();
    }
  });

  test('Judge0: every route, its answers and its refusals', async () => {
    const submission = { source_code: 'print(1)', language_id: 71 };
    const created = await answers(201, 'POST', '/submissions', '/submissions', { payload: submission });
    const { token } = created.json() as { token: string };
    await answers(201, 'POST', '/submissions', '/submissions', { payload: 'source_code=print(2)&language_id=71', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    await replacing('wait', finished, async () => {
      const waited = await answers(201, 'POST', '/submissions', '/submissions?wait=true&fields=*', { payload: submission });
      // The answer keeps every attribute: no schema shapes it.
      assert.deepEqual(Object.keys(waited.json()).sort(), [...JUDGE0_ATTRIBUTES].sort());
    });
    await answers(422, 'POST', '/submissions', '/submissions', { payload: { ...submission, language_id: 9999 } });
    await answers(400, 'POST', '/submissions', '/submissions?fields=bogus', { payload: submission });
    await answers(415, 'POST', '/submissions', '/submissions', { payload: '<x/>', headers: { 'content-type': 'application/xml' } });
    await answers(413, 'POST', '/submissions', '/submissions', { payload: { ...submission, stdin: 'x'.repeat(300 * 1024) } });
    await answers(400, 'POST', '/submissions', '/submissions', { payload: '{"source_code":', headers: { 'content-type': 'application/json' } });
    check.conforms(await service.app.inject({ method: 'POST', url: '/submissions', payload: submission }), 'POST', '/submissions'); // 401
    await replacing('submit', async () => Promise.reject(new QueueFullError(5, 5)), async () => {
      await answers(503, 'POST', '/submissions', '/submissions', { payload: submission });
    });
    await answers(201, 'POST', '/submissions/batch', '/submissions/batch', { payload: { submissions: [submission, { ...submission, language_id: 9999 }] } });
    await answers(422, 'POST', '/submissions/batch', '/submissions/batch', { payload: { submissions: [{ language_id: 9999 }] } });
    await answers(400, 'POST', '/submissions/batch', '/submissions/batch', { payload: { submissions: [] } });
    await answers(200, 'GET', '/submissions/batch', `/submissions/batch?tokens=${token},nope`);
    await answers(400, 'GET', '/submissions/batch', '/submissions/batch');
    await answers(200, 'GET', '/submissions/{token}', `/submissions/${token}`);
    await answers(200, 'GET', '/submissions/{token}', `/submissions/${token}?fields=*&base64_encoded=true`);
    await replacing('get', finished, async () => {
      await answers(200, 'GET', '/submissions/{token}', `/submissions/${token}?fields=*`);
    });
    await answers(404, 'GET', '/submissions/{token}', '/submissions/no-such-token');
    await answers(400, 'GET', '/submissions/{token}', `/submissions/${token}?fields=bogus`);
    await answers(414, 'GET', '/submissions/{token}', `/submissions/${'a'.repeat(3000)}`);
    await answers(403, 'GET', '/submissions', '/submissions');
    await answers(403, 'DELETE', '/submissions/{token}', `/submissions/${token}`);
    await answers(200, 'GET', '/statuses', '/statuses');
    await answers(200, 'GET', '/about', '/about');
    await answers(200, 'GET', '/version', '/version');
    await answers(200, 'GET', '/config_info', '/config_info');
    await answers(503, 'GET', '/workers', '/workers');
    await replacing('liveWorkers', async () => [{ workerId: 'w', host: 'h', pid: 1, concurrency: 2, running: 1 }] as never, async () => {
      await answers(200, 'GET', '/workers', '/workers');
    });
    await answers(200, 'GET', '/languages', '/languages');
    await answers(200, 'GET', '/languages/all', '/languages/all');
    await answers(200, 'GET', '/languages/{id}', '/languages/50');
    await answers(404, 'GET', '/languages/{id}', '/languages/9999');
    await service.app.inject({ method: 'DELETE', url: `/v1/jobs/${token}`, headers: keyed });
  });

  test('Piston, under both prefixes: every route, its answers and its refusals', async () => {
    for (const prefix of ['/api/v2', '/api/v2/piston']) {
      const execute = { language: 'python', version: '3', files: [{ content: 'print(1)' }] };
      await answers(200, 'GET', `${prefix}/runtimes`, `${prefix}/runtimes`);
      await answers(200, 'GET', `${prefix}/packages`, `${prefix}/packages`);
      await replacing('wait', finished, async () => {
        const ran = await answers(200, 'POST', `${prefix}/execute`, `${prefix}/execute`, { payload: execute });
        assert.deepEqual(Object.keys(ran.json().run).sort(), ['code', 'cpu_time', 'memory', 'message', 'output', 'signal', 'status', 'stderr', 'stdout', 'wall_time']);
      });
      await replacing('wait', async (jobId) => ({ id: jobId, status: 'failed', createdAt: new Date().toISOString(), failure: { code: 'x', message: 'the job failed' } }), async () => {
        await answers(500, 'POST', `${prefix}/execute`, `${prefix}/execute`, { payload: execute });
      });
      await answers(400, 'POST', `${prefix}/execute`, `${prefix}/execute`, { payload: { ...execute, language: 'cobol' } });
      await answers(400, 'POST', `${prefix}/execute`, `${prefix}/execute`, { payload: '{', headers: { 'content-type': 'application/json' } });
      await answers(415, 'POST', `${prefix}/execute`, `${prefix}/execute`, { payload: '<x/>', headers: { 'content-type': 'application/xml' } });
      await answers(413, 'POST', `${prefix}/execute`, `${prefix}/execute`, { payload: { ...execute, stdin: 'x'.repeat(300 * 1024) } });
      // No worker: the wait ends, the job is cancelled.
      await answers(503, 'POST', `${prefix}/execute`, `${prefix}/execute`, { payload: execute });
      check.conforms(await service.app.inject({ url: `${prefix}/runtimes` }), 'GET', `${prefix}/runtimes`); // 401
      await answers(426, 'GET', `${prefix}/connect`, `${prefix}/connect`);
      const opened = await upgrade(`${baseUrl}${prefix}/connect`, { 'x-api-key': PISTON_LIVE_KEY });
      try {
        check.conforms(opened, 'GET', `${prefix}/connect`);
        const refused = await upgrade(`${baseUrl}${prefix}/connect`, { 'x-api-key': PISTON_LIVE_KEY });
        assert.equal(refused.statusCode, 429);
        assert.equal(refused.headers['retry-after'], '10', 'README: 429 and 503 carry Retry-After');
        check.conforms(refused, 'GET', `${prefix}/connect`);
      } finally {
        opened.socket?.destroy();
      }
      // The place comes back once the server has seen the socket close.
      for (let tries = 0; ; tries++) {
        const again = await upgrade(`${baseUrl}${prefix}/connect`, { 'x-api-key': PISTON_LIVE_KEY });
        again.socket?.destroy();
        if (again.statusCode === 101) break;
        assert.ok(tries < 50, 'the place is given back');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });

  test('a rate-limited key: every front answers 429, with Retry-After and its window', async () => {
    const limited = { 'x-api-key': LIMITED_KEY };
    await answers(200, 'GET', '/v1/runtimes', '/v1/runtimes', { headers: limited });
    const routes: ['GET' | 'POST', string, string][] = [
      ['GET', '/v1/runtimes', '/v1/runtimes'],
      ['POST', '/v1/jobs', '/v1/jobs'],
      ['GET', '/v1/jobs/{id}', '/v1/jobs/x'],
      ['POST', '/v1/live/tickets', '/v1/live/tickets'],
      ['POST', '/submissions', '/submissions'],
      ['GET', '/languages', '/languages'],
      ['GET', '/statuses', '/statuses'],
      ['POST', '/api/v2/execute', '/api/v2/execute'],
      ['GET', '/api/v2/runtimes', '/api/v2/runtimes'],
      ['GET', '/api/v2/piston/packages', '/api/v2/piston/packages'],
    ];
    for (const [method, path, url] of routes) {
      const refused = await answers(429, method, path, url, { headers: limited, ...(method === 'POST' ? { payload: {} } : {}) });
      assert.ok(Number(refused.headers['retry-after']) > 0, `${url}: Retry-After`);
      assert.equal(refused.headers['x-ratelimit-limit'], '1');
    }
  });

  test('every route of the document was checked, and said where it is told', () => {
    const documented = Object.entries(check.document.paths as Record<string, Record<string, { description?: string; tags?: string[] }>>).flatMap(([path, operations]) =>
      Object.entries(operations).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, operation })),
    );
    const checked = new Set([...check.seen].map((where) => where.split(' ').slice(0, 2).join(' ')));
    assert.deepEqual(documented.map(({ route }) => route).filter((route) => !checked.has(route)), [], 'routes no answer was checked against');
    for (const { route, operation } of documented) {
      if (operation.tags?.includes('judge0') || operation.tags?.includes('piston')) assert.match(operation.description ?? '', /docs\/compat\.md/, route);
    }
  });
});
