// Judge0's callback_url: composed for the worker (PUT, Judge0's fields, 3 tries on failures only)
// and sent by a worker's notifier, so that the API that accepted it may be gone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { judge0Callback, judge0CallbackUrl } from '../../src/api/compat/judge0-callback.js';
import { Judge0Languages } from '../../src/api/compat/judge0-languages.js';
import { judge0Front } from '../../src/api/compat/judge0-request-attributes.js';
import type { JobRecord, JobRequest } from '../../src/jobs/model.js';
import { until } from '../helpers/until.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { builtRuntimes, scratchDir, startService, startTestWorker, type ServiceHarness, type TestWorker } from '../service/fixtures.js';
import { done, python311, stage } from './fixtures.js';

test('a finished submission with a callback_url is a PUT of Judge0 fields, tried 3 times on failures only', () => {
  const languages = new Judge0Languages([python311]);
  const finished: JobRecord = { ...done({ run: stage({ stdout: 'hi\n' }) }), id: 'A'.repeat(21) };
  const attributes = { languageId: 71, expectedOutputBase64: null, cpuExtraTimeSeconds: null, commandLineArguments: null };
  const base: JobRequest = { runtimeId: 'python', files: [{ name: 'main.py', contentBase64: '' }], stdinBase64: '', args: [], limits: {} };
  const request = { ...base, front: judge0Front({ ...attributes, callbackUrl: 'http://192.0.2.7/cb' }) };
  const callback = judge0Callback(request, { ...finished, request }, languages);
  assert.ok(callback);
  assert.deepEqual(
    [callback.url, callback.method, callback.retryOnStatus, callback.attempts, callback.timeoutMs, callback.backoffMs],
    ['http://192.0.2.7/cb', 'PUT', false, 3, 5000, 0],
  );
  const body = callback.body as Record<string, unknown>;
  assert.equal(body.token, finished.id);
  assert.equal(body.stdout, `${Buffer.from('hi\n').toString('base64')}\n`);
  const without = { ...base, front: judge0Front({ ...attributes, callbackUrl: null }) };
  assert.equal(judge0Callback(without, { ...finished, request: without }, languages), undefined);
  assert.deepEqual([judge0CallbackUrl(request), judge0CallbackUrl(without)], ['http://192.0.2.7/cb', undefined]);
});

const built = builtRuntimes();
const python = built.runtimes.find((runtime) => runtime.id === 'python');

describe('a callback once the API that accepted the submission has closed', { skip: !python && 'python image not built (bin/cellblock images build python)' }, () => {
  let service: ServiceHarness;
  let worker: TestWorker;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    scratch = await scratchDir();
    service = await startService({ runtimes: [python!] });
    worker = await startTestWorker(service, scratch.dir, { runtimes: [python!] });
  });
  after(async () => {
    await worker?.close();
    await service?.close();
    await scratch?.remove();
  });

  test('is sent by the worker', async () => {
    const receiver = await startWebhookReceiver(() => 200);
    try {
      const created = await service.app.inject({
        method: 'POST',
        url: '/submissions',
        payload: {
          source_code: 'import time\ntime.sleep(0.5)\nprint("late")',
          language_id: 71,
          callback_url: receiver.url,
        },
      });
      assert.equal(created.statusCode, 201, created.body);
      // The API goes while the submission runs (a restart, a deploy).
      await service.app.close();
      await until(() => receiver.received.length > 0, 30_000, 20, 'the callback');
      assert.equal(receiver.received.length, 1);
      const { method, body } = receiver.received[0]!;
      assert.deepEqual([method, body.stdout, body.token], ['PUT', `${Buffer.from('late\n').toString('base64')}\n`, created.json().token]);
    } finally {
      receiver.close();
    }
  });
});
