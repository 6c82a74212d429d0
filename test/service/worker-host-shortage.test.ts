// A job whose sandbox meets a host shortage, no sandbox uid free (ExecutorError no_sandbox_uid:
// every uid of the machine leased by its workers' slots) or no file descriptor (no_descriptors:
// the worker's open files limit, EMFILE, or the machine's, ENFILE), goes back to the queue by one
// rule for both: taken again after a delay that doubles, a bounded number of times counted once
// per job whichever shortage each take met, then fails with its shortage's own message; a live
// one goes back only while its session was told nothing. Real Redis and the real worker's queue
// side, on a stand-in executor that is short as the job's source says: no sandbox.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { ExecutorError } from '../../src/executor/errors.js';
import type { ExecuteRequest, ExecuteResult } from '../../src/executor/types.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { JobRequest, LiveEvent } from '../../src/jobs/model.js';
import { createRedis } from '../../src/queue/connection.js';
import { QUEUE_NAME, redisKeys } from '../../src/queue/keys.js';
import type { HostShortageRetry, JobExecutor, QueueWorker } from '../../src/queue/worker.js';
import { collectingLogger } from '../helpers/log-lines.js';
import { runAsEcho, startService, startStandInWorker, type ServiceHarness } from './fixtures.js';

const runtimes = loadRuntimes();
const python = runtimes.find((runtime) => runtime.id.startsWith('python'))!;
const RETRY: HostShortageRetry = { handBacks: 3, firstDelayMs: 200 };
const TRIED = `; it was taken again 3 times over 1 s, each time short of a sandbox uid or a file descriptor`;

/** What each shortage says. */
const MESSAGES = {
  uid: "the job's sandbox could not be made: no sandbox uid is free: all 1024 of this machine (60000-61023) are leased by its workers' slots, and this worker had no idle slot to give one up",
  descriptors: "the job's sandbox could not be made: the worker process reached its open files limit (RLIMIT_NOFILE) (EMFILE at the sandbox's setup step open_memfd)",
};
/** Each shortage as the executor says it, and as the worker logs its hand-back. */
const SHORTAGES = {
  uid: {
    error: () => new ExecutorError('no_sandbox_uid', MESSAGES.uid),
    handedBack: 'no sandbox uid is free for the job; returning it to the queue',
  },
  descriptors: {
    error: () => new ExecutorError('no_descriptors', MESSAGES.descriptors),
    handedBack: "no file descriptor for the job's sandbox; returning it to the queue",
  },
};
type Kind = keyof typeof SHORTAGES;
const KINDS = Object.keys(SHORTAGES) as Kind[];

/** The job's source, `<shortages> <kind> [compiled]`: its first `shortages` takes are short
 * (`always`: every one is) of `kind` (`uid`, `descriptors`, or `alternating`: a uid on its odd
 * takes, descriptors on its even ones), after its compile's stage where `compiled`; then it runs
 * as an echo of its input (a live job's, from its client). Each take's time is kept by the job's
 * source. */
const takes = new Map<string, number[]>();
const executor: JobExecutor = {
  execute: async (job: ExecuteRequest): Promise<ExecuteResult> => {
    const source = Buffer.from(job.files[0]!.content).toString();
    const times = takes.get(source) ?? [];
    takes.set(source, [...times, Date.now()]);
    const [shortages, kind, compiled] = source.split(' ');
    if (compiled === 'compiled') job.live?.stage('compile');
    if (shortages === 'always' || times.length < Number(shortages)) {
      const short: Kind = kind === 'alternating' ? (times.length % 2 === 0 ? 'uid' : 'descriptors') : (kind as Kind);
      throw SHORTAGES[short].error();
    }
    return runAsEcho(job);
  },
  close: async () => {},
};

const request = (source: string, stdin = ''): JobRequest => ({
  runtimeId: python.id,
  files: [{ name: 'main.py', contentBase64: Buffer.from(source).toString('base64') }],
  stdinBase64: Buffer.from(stdin).toString('base64'),
  args: [],
  limits: {},
});

describe('a job at a host shortage (no sandbox uid, no file descriptor)', () => {
  let service: ServiceHarness;
  let worker: QueueWorker;
  const logLines: string[] = [];

  before(async () => {
    service = await startService({ runtimes });
    worker = await startStandInWorker(service, executor, { logger: collectingLogger('warn', logLines).logger, hostShortageRetry: RETRY });
  });
  after(async () => {
    await worker?.close();
    await service?.close();
  });

  for (const kind of KINDS) {
    test(`short of ${kind}: goes back to the queue, taken again after a delay that doubles, and runs once the host has one`, async () => {
      const source = `2 ${kind}`;
      const id = await service.jobs.submit(request(source, 'input'));
      const record = await service.jobs.wait(id, 20_000);
      assert.equal(record?.status, 'done', JSON.stringify(record));
      assert.equal(Buffer.from(record!.result!.run!.stdoutBase64, 'base64').toString(), 'input');
      assert.equal(record?.attempts, 3, 'each take counted');
      const [first, second, third] = takes.get(source)!;
      assert.ok(second! - first! >= RETRY.firstDelayMs, `taken again ${second! - first!} ms later`);
      assert.ok(third! - second! >= 2 * RETRY.firstDelayMs, `then ${third! - second!} ms later`);
      const handedBack = logLines.filter((line) => line.includes(SHORTAGES[kind].handedBack) && line.includes(`"jobId":"${id}"`));
      assert.equal(handedBack.length, 2, logLines.join(''));
    });

    test(`short of ${kind}: fails once it went back the most times, with its shortage's own message and how long it was tried`, async () => {
      const source = `always ${kind}`;
      const id = await service.jobs.submit(request(source));
      const record = await service.jobs.wait(id, 20_000);
      assert.equal(record?.status, 'failed', JSON.stringify(record));
      assert.deepEqual(record?.failure, { code: 'internal_error', message: `executor: ${MESSAGES[kind]}${TRIED}` });
      assert.equal(takes.get(source)?.length, RETRY.handBacks + 1);
    });
  }

  test('one count per job for both shortages: short of a uid and of descriptors by turns, it fails at the same take, with the last one\'s message', async () => {
    const redis = createRedis(service.redis.url, 'producer', 'cellblock-test');
    try {
      const source = 'always alternating';
      const id = await service.jobs.submit(request(source));
      const record = await service.jobs.wait(id, 20_000);
      assert.equal(record?.status, 'failed', JSON.stringify(record));
      assert.equal(takes.get(source)?.length, RETRY.handBacks + 1, 'not a bound for each shortage');
      // Its fourth take (even) was short of descriptors.
      assert.deepEqual(record?.failure, { code: 'internal_error', message: `executor: ${MESSAGES.descriptors}${TRIED}` });
      assert.equal(Number(await redis.get(redisKeys(service.prefix).hostShortageTakes(id, Date.parse(record!.createdAt)))), RETRY.handBacks + 1);
      assert.equal(record?.attempts, RETRY.handBacks + 1);
    } finally {
      redis.disconnect();
    }
  });

  test('a job made again under the same id (an Idempotency-Key whose job expired) starts from no shortage counted', async () => {
    const queue = new Queue(QUEUE_NAME, { connection: createRedis(service.redis.url, 'producer', 'cellblock-test-queue'), prefix: service.prefix });
    try {
      const key = 'host-shortage-again';
      const first = await service.jobs.submitOnce(request('always uid'), key);
      assert.equal((await service.jobs.wait(first.id, 20_000))?.status, 'failed');
      // Gone, as an expired job is before its key makes a new one.
      await queue.remove(first.id);
      const source = '2 uid again';
      const again = await service.jobs.submitOnce(request(source), key);
      assert.equal(again.id, first.id);
      const record = await service.jobs.wait(again.id, 20_000);
      // Counted on from the first job's 4, it failed at its first shortage.
      assert.deepEqual([record?.status, record?.attempts, takes.get(source)?.length], ['done', 3, 3], JSON.stringify(record));
    } finally {
      await queue.close();
      (await queue.client).disconnect();
    }
  });

  for (const kind of KINDS) {
    test(`short of ${kind}, a live job goes back unrun while its session was told nothing, and runs with its client's input; told \`started\`, it fails`, async () => {
      const redis = createRedis(service.redis.url, 'producer', 'cellblock-test');
      const sessions = [];
      try {
        const unstartedEvents: LiveEvent[] = [];
        const unstarted = await service.jobs.submitLive(request(`1 ${kind}`), (event) => unstartedEvents.push(event));
        sessions.push(unstarted);
        unstarted.write(Buffer.from('typed\n'));
        unstarted.endStdin();
        const ran = await service.jobs.wait(unstarted.id, 20_000);
        assert.equal(ran?.status, 'done', JSON.stringify(ran));
        assert.equal(Buffer.from(ran!.result!.run!.stdoutBase64, 'base64').toString(), 'typed\n', "it ran with its client's input");
        assert.equal(Number(await redis.get(redisKeys(service.prefix).liveUnrunTakes(unstarted.id))), 1, 'its first take counted unrun');
        assert.deepEqual(unstartedEvents[0], { type: 'started' }, 'its session heard `started` from the take that ran it alone');
        assert.equal(unstartedEvents.filter((event) => event.type === 'started').length, 1);

        // Its compile's stage told (`started` with it): the input its session held went to it.
        const source = `1 ${kind} compiled`;
        const started = await service.jobs.submitLive(request(source), () => {});
        sessions.push(started);
        const failed = await service.jobs.wait(started.id, 20_000);
        assert.equal(failed?.status, 'failed', JSON.stringify(failed));
        assert.deepEqual(failed?.failure, { code: 'internal_error', message: `executor: ${MESSAGES[kind]}` });
        assert.equal(takes.get(source)?.length, 1, 'not taken again');
      } finally {
        for (const session of sessions) session.close();
        redis.disconnect();
      }
    });
  }
});
