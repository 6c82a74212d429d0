// Handing a taken job back to its BullMQ queue unfinished, as a worker's jobs and a notifier's
// entries both are.
import { DelayedError, WaitingError, type Job } from 'bullmq';

/**
 * Back to the queue, counting no attempt of BullMQ's: the error thrown tells BullMQ's Worker to
 * leave the job as it was moved. At once (no `delayMs`): at its head (it was queued before those
 * waiting), with no time given, since BullMQ's moveToDelayed scores the job by this process's
 * clock, so that one ahead by d left it delayed for d, every other worker idle beside it. (BullMQ
 * leaves a job it is told was moved to wait as it is.) `delayMs` later: by this process's clock, as
 * BullMQ scores the job (its moveToDelayed adds the delay to the caller's Date.now()) and as the
 * takes that promote it (moveToActive) and the Workers' waits for it are timed. A taker whose clock
 * is off promotes it early or late by its skew: one behind wakes at least every 10 s (BullMQ's
 * longest block) and takes it late by at most its skew; one with a correct clock takes it on time.
 */
export async function handBackJob(job: Job, token: string | undefined, delayMs = 0): Promise<never> {
  if (delayMs > 0) {
    await job.moveToDelayed(Date.now() + delayMs, token);
    throw new DelayedError();
  }
  await job.moveToWait(token);
  throw new WaitingError();
}
