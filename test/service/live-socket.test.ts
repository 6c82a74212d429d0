// A socket's job before its session exists: stdin counted at once, input applied in order once it
// does, and a job whose socket ended meanwhile cancelled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { JobRequest, LiveSession } from '../../src/jobs/model.js';
import type { JobService } from '../../src/api/service.js';
import { SocketJob } from '../../src/api/live-socket.js';

function lateJobs(log: string[]): { jobs: JobService; resolve: () => void } {
  let resolve: () => void = () => {};
  const session: LiveSession = {
    id: 'job',
    write: (data) => {
      log.push(`write ${Buffer.from(data).toString()}`);
      return true;
    },
    endStdin: () => void log.push('end'),
    cancel: async () => void log.push('cancel'),
    close: () => void log.push('close'),
  };
  const jobs = { submitLive: () => new Promise<LiveSession>((done) => (resolve = () => done(session))) } as unknown as JobService;
  return { jobs, resolve: () => resolve() };
}

const request = { runtimeId: 'python', files: [], stdinBase64: '', args: [], limits: {} } satisfies JobRequest;
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('input sent while the job is queued is applied in order once its session exists; stdin is counted from the first byte', async () => {
  const log: string[] = [];
  const { jobs, resolve } = lateJobs(log);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 3);
  assert.equal(socketJob.write(Buffer.from('x')), 'not_submitted');
  socketJob.submit(jobs, request, () => {}, { socketEnded: () => false, accepted: () => log.push('accepted'), refused: () => log.push('refused') });
  assert.equal(socketJob.write(Buffer.from('ab')), 'sent');
  assert.equal(socketJob.write(Buffer.from('cd')), 'too_large', 'counted before the session exists');
  socketJob.use((session) => session.endStdin());
  resolve();
  await settle();
  assert.deepEqual(log, ['accepted', 'write ab', 'end']);
});

test('a job whose socket ended while it was being queued is cancelled once it exists', async () => {
  const log: string[] = [];
  const { jobs, resolve } = lateJobs(log);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100);
  socketJob.submit(jobs, request, () => {}, { socketEnded: () => true, accepted: () => log.push('accepted'), refused: () => log.push('refused') });
  resolve();
  await settle();
  assert.deepEqual(log, ['close', 'cancel']);
});

test('after the job\'s end, abandoning only stops listening', async () => {
  const log: string[] = [];
  const { jobs, resolve } = lateJobs(log);
  const socketJob = new SocketJob(pino({ level: 'silent' }), 100);
  socketJob.submit(jobs, request, () => {}, { socketEnded: () => false, accepted: () => {}, refused: () => {} });
  resolve();
  await settle();
  socketJob.end();
  await socketJob.abandon();
  assert.deepEqual(log, ['close']);
});
