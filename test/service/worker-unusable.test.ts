// A job taken by a worker whose executor has just become unusable (its pool's mount agent died):
// Executor.unusable is set the moment the agent's end is known, and the reactions to `lost` that
// close the worker come a turn later, so a take already in flight can land in between. Such a job
// goes back to the queue unrun, and a live one's take is counted as unrun, so the worker that runs
// it next runs it with its client's input instead of failing it as taken again. resilience.test.ts
// kills a real agent, where that take lands only when the race goes its way; here a stand-in
// executor holds the window open. A live job taken before, whose first slot the executor is
// refused, goes back unrun too: its session was told nothing (`started` goes with the executor's
// first word), so its client's input is still the session's; one whose stage had begun fails.
// So does one whose worker's shutdown grace runs out before its first stage: the channel, given
// the run's signal, tells its session nothing once the run is stopped.
// Real Redis and the real worker's queue side: no sandbox.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExecutorError } from '../../src/executor/errors.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import type { JobRequest, LiveEvent, LiveSession } from '../../src/jobs/model.js';
import { createRedis } from '../../src/queue/connection.js';
import { redisKeys } from '../../src/queue/keys.js';
import type { LiveChannel } from '../../src/queue/live-channel.js';
import type { JobExecutor, QueueWorker } from '../../src/queue/worker.js';
import { collectingLogger } from '../helpers/log-lines.js';
import { until } from '../helpers/until.js';
import { runAsEcho, startService, startStandInWorker, type ServiceHarness } from './fixtures.js';

const runtimes = loadRuntimes();
const python = runtimes.find((runtime) => runtime.id.startsWith('python'))!;
const request = (source: string): JobRequest => ({ runtimeId: python.id, files: [{ name: 'main.py', contentBase64: Buffer.from(source).toString('base64') }], stdinBase64: '', args: [], limits: {} });

/** Runs a job as an echo: its stdout is its input (a live job's, from its client, to its end). */
const echoExecutor: JobExecutor = { execute: runAsEcho, close: async () => {} };

/** A stand-in worker of `concurrency` slots logging at warn and above into `logLines`. */
function workerOn(service: ServiceHarness, executor: JobExecutor, logLines: string[], concurrency = 1): Promise<QueueWorker> {
  return startStandInWorker(service, executor, { logger: collectingLogger('warn', logLines).logger, concurrency });
}

test('jobs taken after the executor became unusable go back to the queue unrun: none fails, and another worker runs them, a live one with its input', { timeout: 60_000 }, async () => {
  const service = await startService({ runtimes });
  const redis = createRedis(service.redis.url, 'producer', 'cellblock-test');
  const keys = redisKeys(service.prefix);
  const doomedLog: string[] = [];
  const executed: string[] = [];
  let unusable: Error | undefined;
  let loseNow!: (cause: Error) => void;
  const doomedExecutor: JobExecutor = {
    execute: async (job) => {
      executed.push(Buffer.from(job.files[0]!.content).toString());
      throw new Error('a job reached the executor after it became unusable');
    },
    close: async () => {},
    lost: new Promise<Error>((resolve) => (loseNow = resolve)),
    get unusable() {
      return unusable;
    },
  };
  let doomed: QueueWorker | undefined;
  let survivor: QueueWorker | undefined;
  let session: LiveSession | undefined;
  try {
    // Two slots, one per job: a job handed back goes to the head of the queue, where the slot that
    // handed it back takes it again while the window stays open (held here, a turn in practice).
    doomed = await workerOn(service, doomedExecutor, doomedLog, 2);
    unusable = new Error('the pool can make no more slots (stand-in: its mount agent died)');
    const plainId = await service.jobs.submit(request('print("plain")'));
    const liveSession = await service.jobs.submitLive(request('echo'), () => {});
    session = liveSession;
    liveSession.write(Buffer.from('typed\n'));
    liveSession.endStdin();
    const handedBackUnrun = (id: string) => doomedLog.some((line) => line.includes('returning it to the queue unrun') && line.includes(`"jobId":"${id}"`));
    await until(async () => handedBackUnrun(plainId) && handedBackUnrun(liveSession.id), 10_000, 10, 'both jobs taken and handed back unrun');

    loseNow(unusable);
    assert.equal(await doomed.stoppedByItself, unusable);
    assert.deepEqual(executed, [], 'no job reached the unusable executor');
    assert.doesNotMatch(doomedLog.join(''), /"level":50.*"jobId"/, 'no job failed');
    for (const id of [plainId, liveSession.id]) assert.equal((await service.jobs.get(id))?.status, 'queued', `job ${id} is back in the queue`);
    // Each of the live job's takes so far was counted as unrun (the doomed worker may have taken
    // it more than once before `lost` closed it).
    const liveJob = await service.jobs.get(liveSession.id);
    const unrunTakes = Number(await redis.get(keys.liveUnrunTakes(liveSession.id)));
    assert.ok(unrunTakes >= 1, 'the live take counted as unrun');
    assert.equal(liveJob?.attempts ?? 0, unrunTakes, 'every take of the live job so far was unrun');

    survivor = await workerOn(service, echoExecutor, []);
    const plain = await service.jobs.wait(plainId, 20_000);
    assert.equal(plain?.status, 'done', JSON.stringify(plain));
    const live = await service.jobs.wait(liveSession.id, 20_000);
    assert.equal(live?.status, 'done', JSON.stringify(live));
    assert.equal(Buffer.from(live!.result!.run!.stdoutBase64, 'base64').toString(), 'typed\n', "the live job ran with its client's input");
  } finally {
    session?.close();
    await doomed?.close();
    await survivor?.close();
    redis.disconnect();
    await service.close();
  }
});

/** A stand-in executor that takes a job's first slot (saying, for the source `begun`, its stage:
 * the executor's first word) and is refused it as the pool's agent dies: `unusable` set, `lost`
 * settled only by `lose()`; for the source `waiting`, it waits for its slot until the worker
 * stops the job (as it stops its running ones once `lost` settles). `startedAtRefusal`: whether
 * the live channel had told its session anything by then, job by job; `waiting`: jobs waiting. */
function refusingExecutor() {
  const startedAtRefusal: boolean[] = [];
  let waiting = 0;
  const cause = new Error('the pool can make no more slots (stand-in: its mount agent died)');
  let unusable: Error | undefined;
  let loseNow!: (cause: Error) => void;
  const executor: JobExecutor = {
    execute: async (job) => {
      const source = Buffer.from(job.files[0]!.content).toString();
      if (source === 'waiting') {
        waiting++;
        await new Promise((stopped) => job.signal!.addEventListener('abort', stopped));
        startedAtRefusal.push((job.live as LiveChannel | undefined)?.started ?? true);
        return { verdict: 'cancelled', runtime: { id: python.id, language: 'python', version: '3' } };
      }
      if (source === 'begun') job.live?.stage('run');
      unusable = cause;
      startedAtRefusal.push((job.live as LiveChannel | undefined)?.started ?? true);
      throw new ExecutorError('unavailable', unusable.message);
    },
    close: async () => {},
    lost: new Promise<Error>((resolve) => (loseNow = resolve)),
    get unusable() {
      return unusable;
    },
  };
  const lose = () => {
    unusable = cause;
    loseNow(cause);
    return cause;
  };
  return { executor, startedAtRefusal, waiting: () => waiting, lose };
}

const handedBackUnrunIn = (log: string[], id: string) => log.some((line) => line.includes('its session was told nothing; returning it to the queue unrun') && line.includes(`"jobId":"${id}"`));

test("a live job whose first slot is refused as the executor becomes unusable, or who waits for it as the worker stops, goes back unrun, its session told nothing; one whose stage had begun fails", { timeout: 60_000 }, async () => {
  const service = await startService({ runtimes });
  const redis = createRedis(service.redis.url, 'producer', 'cellblock-test');
  const keys = redisKeys(service.prefix);
  const workers: QueueWorker[] = [];
  const sessions: LiveSession[] = [];
  /** A worker on a refusingExecutor of its own, and its log. */
  const doomedWorker = async () => {
    const refusing = refusingExecutor();
    const log: string[] = [];
    const worker = await workerOn(service, refusing.executor, log);
    workers.push(worker);
    return { ...refusing, worker, log };
  };
  /** A live job of `source`, and the events its session hears. */
  const liveJob = async (source: string) => {
    const events: LiveEvent[] = [];
    const session = await service.jobs.submitLive(request(source), (event) => events.push(event));
    sessions.push(session);
    return { session, events };
  };
  try {
    const refusing = await doomedWorker();
    const { worker: doomed, log: doomedLog } = refusing;
    const { session: refused, events: refusedEvents } = await liveJob('refused');
    refused.write(Buffer.from('typed\n'));
    refused.endStdin();
    await until(async () => handedBackUnrunIn(doomedLog, refused.id), 10_000, 10, 'the live job handed back unrun');
    const refusal = refusing.lose();
    assert.equal(await doomed.stoppedByItself, refusal);
    assert.deepEqual(refusing.startedAtRefusal, [false], 'the executor was refused before its first word');
    assert.doesNotMatch(doomedLog.join(''), /"level":50.*"jobId"/, 'no job failed');
    assert.deepEqual(refusedEvents, [], 'its session heard nothing');
    const queued = await service.jobs.get(refused.id);
    assert.equal(queued?.status, 'queued', 'back in the queue');
    assert.equal(queued?.attempts ?? 0, Number(await redis.get(keys.liveUnrunTakes(refused.id))), 'every take of it so far counted unrun');

    const survivor = await workerOn(service, echoExecutor, []);
    workers.push(survivor);
    const ran = await service.jobs.wait(refused.id, 20_000);
    assert.equal(ran?.status, 'done', JSON.stringify(ran));
    assert.equal(Buffer.from(ran!.result!.run!.stdoutBase64, 'base64').toString(), 'typed\n', "it ran with its client's input");
    await survivor.close();

    // Its stage begun (`started` and `stage` told: the input its session held is sent to this
    // worker), the same refusal fails the job.
    const refusingLater = await doomedWorker();
    const { session: begun, events: begunEvents } = await liveJob('begun');
    const failed = await service.jobs.wait(begun.id, 20_000);
    assert.equal(failed?.status, 'failed', JSON.stringify(failed));
    assert.match(failed?.failure?.message ?? '', /could run it no further/);
    assert.deepEqual(refusingLater.startedAtRefusal, [true]);
    await until(async () => begunEvents.length >= 2, 5000, 10, 'the events of its start');
    assert.deepEqual(begunEvents.slice(0, 2), [{ type: 'started' }, { type: 'stage', stage: 'run' }], 'its session was told it started');
    refusingLater.lose();
    await refusingLater.worker.stoppedByItself;

    // Waiting for its first slot when the worker stops it (the agent's death heard), told nothing:
    // back unrun, as at a refusal.
    const refusingWaiting = await doomedWorker();
    const { session: waiting, events: waitingEvents } = await liveJob('waiting');
    await until(async () => refusingWaiting.waiting() === 1, 10_000, 10, 'the job waiting for its slot');
    const cause = refusingWaiting.lose();
    assert.equal(await refusingWaiting.worker.stoppedByItself, cause);
    assert.deepEqual(refusingWaiting.startedAtRefusal, [false]);
    assert.ok(handedBackUnrunIn(refusingWaiting.log, waiting.id), refusingWaiting.log.join(''));
    assert.equal((await service.jobs.get(waiting.id))?.status, 'queued', 'back in the queue');
    assert.equal(Number(await redis.get(keys.liveUnrunTakes(waiting.id))), 1, 'its take counted unrun');
    assert.deepEqual(waitingEvents, [], 'its session heard nothing');
  } finally {
    for (const session of sessions) session.close();
    for (const worker of workers) await worker.close();
    redis.disconnect();
    await service.close();
  }
});

test("a live job whose worker's shutdown grace runs out before its first stage goes back unrun, its session told nothing, and another worker runs it with its input", { timeout: 60_000 }, async () => {
  const service = await startService({ runtimes });
  const redis = createRedis(service.redis.url, 'producer', 'cellblock-test');
  const keys = redisKeys(service.prefix);
  const log: string[] = [];
  let waiting = 0;
  // As the executor does when its first stage's slot comes after the stop: it says the stage and
  // connects the stdin (its first words), and the stage, its signal aborted, runs nothing.
  const slowSlotExecutor: JobExecutor = {
    execute: async (job) => {
      waiting++;
      await new Promise((stopped) => job.signal!.addEventListener('abort', stopped));
      job.live?.stage('run');
      job.live?.connectStdin({ write: () => {}, end: () => {}, resize: () => {} });
      return { verdict: 'cancelled', runtime: { id: python.id, language: 'python', version: '3' } };
    },
    close: async () => {},
  };
  const stopping = await startStandInWorker(service, slowSlotExecutor, { logger: collectingLogger('warn', log).logger, shutdownGraceMs: 200 });
  let survivor: QueueWorker | undefined;
  const events: LiveEvent[] = [];
  const session = await service.jobs.submitLive(request('echo'), (event) => events.push(event));
  try {
    session.write(Buffer.from('typed\n'));
    session.endStdin();
    await until(async () => waiting === 1, 10_000, 10, 'the job waiting for its first slot');
    await stopping.close();
    assert.ok(log.some((line) => line.includes('shut down before the live job began') && line.includes(`"jobId":"${session.id}"`)), log.join(''));
    assert.doesNotMatch(log.join(''), /"level":50.*"jobId"/, 'no job failed');
    assert.deepEqual(events, [], 'its session heard nothing');
    assert.equal((await service.jobs.get(session.id))?.status, 'queued', 'back in the queue');
    assert.equal(Number(await redis.get(keys.liveUnrunTakes(session.id))), 1, 'its take counted unrun');

    survivor = await workerOn(service, echoExecutor, []);
    const ran = await service.jobs.wait(session.id, 20_000);
    assert.equal(ran?.status, 'done', JSON.stringify(ran));
    assert.equal(Buffer.from(ran!.result!.run!.stdoutBase64, 'base64').toString(), 'typed\n', "it ran with its client's input");
  } finally {
    session.close();
    await stopping.close();
    await survivor?.close();
    redis.disconnect();
    await service.close();
  }
});
