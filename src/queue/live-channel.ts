// A worker's side of a live job: the executor's LiveIo over the job's two channels (live-wire.ts).
// The job's stdin arrives on a subscriber connection of the worker's live jobs (a
// ChannelSubscriber, not the one its cancels come on) and is held until the program runs; events go out on the worker's own connection, in
// order, and `close` sends the last (`end`) once every earlier one is on its way.
// The session is told `started` only with the executor's first word (its first stage, once that
// stage's slot is had), not when the channel opens: until then its client's input stays with the
// session, and a job its worker cannot run goes back to the queue with nothing of it taken
// (worker.ts, handBackUnrun). A run stopped before that word (its worker's shutdown grace over
// while the first slot was being had) is told nothing at all, whatever the executor says after.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { LiveIo, LiveStageName, LiveStdin, StageResult, TerminalSize } from '../executor/types.js';
import type { ChannelSubscriber } from './channel-subscriber.js';
import type { RedisKeys } from './keys.js';
import { decodeInput, encodeEvent, liveExitOf, mergedInput, type WireEvent, type WireInput } from './live-wire.js';
import { mergedBytes, SerialOutbox } from './serial-outbox.js';
import { CLOSE_REDIS_AWAY_MS, settledWithin } from './unreachable.js';

export interface LiveChannel extends LiveIo {
  /** Tells the session that nothing follows and stops listening; never throws, and gives up on a
   * Redis that does not answer (the job's result is what matters then). */
  close(): Promise<void>;
  /** Resolves false when no session listens to the job's events: none heard `started`, and none
   * is subscribed at any of the looks after it (NO_SESSION_LOOKS_MS: a subscriber reconnecting);
   * true otherwise, when Redis cannot tell, and when the channel closes before `started` went. */
  sessionListens(): Promise<boolean>;
  /** Whether `started` went to the session (with the executor's first word): from then on the
   * client's input comes to this worker, and the job can no longer go back to the queue unrun.
   * Until then the session has been told nothing and holds the input. */
  readonly started: boolean;
}

/** When a worker looks again for a live job's session that did not hear `started`, in ms after
 * it: an API's subscriber reconnecting comes back within ioredis's backoff (2 s at most here),
 * or, after a Redis restart, once the data is loaded (its ready check waits up to 10 s). */
export const NO_SESSION_LOOKS_MS: readonly number[] = [2000, 6000, 12_000];

/** Input heard, to the running program. */
function deliver(program: LiveStdin, input: WireInput): void {
  if (input.type === 'stdin') program.write(input.data);
  else if (input.type === 'stdinEnd') program.end();
  else program.resize({ rows: input.rows, cols: input.cols });
}

/** What a live job's channel is opened with: the job's `terminal` (JobRequest.terminal); its
 * run's signal (`stopped`); when to look for its session (NO_SESSION_LOOKS_MS by default). */
export interface LiveChannelOptions {
  terminal?: TerminalSize;
  /** Aborted when the worker stops the run. Aborted before the executor's first word, the
   * session is told nothing from then on: the executor may still go through its first stage
   * (its slot had, the stage runs nothing), and the job goes back to the queue unrun. */
  stopped?: AbortSignal;
  noSessionLooksMs?: readonly number[];
}

/** Listens for the job's stdin; its session is told that the job was taken (`started`, after
 * which the input it held comes and is heard) with the executor's first word, unless the run was
 * stopped before it (LiveChannelOptions.stopped). */
export async function openLiveChannel(
  inputs: Pick<ChannelSubscriber, 'listen' | 'unlisten'>,
  publisher: Pick<Redis, 'publish' | 'pubsub'>,
  keys: RedisKeys,
  jobId: string,
  { terminal, stopped, noSessionLooksMs = NO_SESSION_LOOKS_MS }: LiveChannelOptions = {},
): Promise<LiveChannel> {
  const inputChannel = keys.liveInput(jobId);
  const eventsChannel = keys.liveEvents(jobId);
  let stdin: LiveStdin | undefined;
  /** Input heard before the program runs, in order. */
  let heldInput: WireInput[] = [];
  // A lost event costs the client a part of the stream, never the job: its result has it all.
  const events = new SerialOutbox<WireEvent>(
    (event) => publisher.publish(eventsChannel, encodeEvent(event)).then(
      () => undefined,
      () => undefined,
    ),
    (last, next) => {
      if (last.type !== 'output' || next.type !== 'output' || last.stage !== next.stage || last.stream !== next.stream) return undefined;
      const data = mergedBytes(last.data, next.data);
      return data && { ...last, data };
    },
  );
  await inputs.listen(inputChannel, (message) => {
    const input = decodeInput(message);
    if (!input) return;
    if (stdin) {
      deliver(stdin, input);
      return;
    }
    // Held merged: what a client typed during a long compile is a few buffers, and of the sizes
    // a window took meanwhile only the last matters.
    const last = heldInput.at(-1);
    const merged = last && mergedInput(last, input);
    if (merged) heldInput[heldInput.length - 1] = merged;
    else heldInput.push(input);
  });
  // `started` ahead of the outbox (published in order on the same connection), so that its
  // receivers tell whether the session listens. Its session listened before it queued the job;
  // none does when the client went first: an API that died, or a queueing that Redis took after
  // the API had given it up (a timeout) and cancelled the job, cancel first. Said with the
  // executor's first word, not now: until then the session holds its client's input and has
  // heard nothing, so that a job this worker cannot run (no slot to be had) goes back to the queue
  // with nothing of it taken. The executor's first word comes once its first stage's slot is had
  // (it takes the slot before it says `stage`).
  const looksStop = new AbortController();
  /** What `started` reached: its publish's receivers (undefined where it failed); or, where the
   * channel closed first, undefined. */
  let startedReceivers: Promise<unknown> | undefined;
  let toldStart!: (receivers: { of: Promise<unknown> | undefined }) => void;
  const startTold = new Promise<{ of: Promise<unknown> | undefined }>((resolve) => (toldStart = resolve));
  /** Whether the session is told nothing more: stopped before `started` went (a shutdown's
   * grace over while the first stage's slot was being had), the job goes back to the queue, its
   * input still held by the session for the worker that runs it (worker.ts, handBackUnrun). */
  const silenced = (): boolean => !startedReceivers && stopped?.aborted === true;
  const start = (): void => {
    if (startedReceivers || silenced()) return;
    startedReceivers = publisher.publish(eventsChannel, encodeEvent({ type: 'started' })).catch(() => undefined);
    toldStart({ of: startedReceivers });
  };
  const send = (event: WireEvent): void => {
    start();
    if (!silenced()) events.add(event);
  };
  const sessionListens = async (): Promise<boolean> => {
    const started = await startTold;
    // Closed before it started: the job ended here (nothing was told, nothing to judge).
    if (!started.of || (await started.of) !== 0) return true;
    let waitedMs = 0;
    for (const atMs of noSessionLooksMs) {
      // Called off by close(): the job has ended, and a look due later would keep a closing
      // worker alive.
      const waited = await sleep(atMs - waitedMs, true, { signal: looksStop.signal }).catch(() => false);
      if (!waited) return true;
      waitedMs = atMs;
      const counts = (await publisher.pubsub('NUMSUB', eventsChannel).catch(() => undefined)) as unknown[] | undefined;
      // An answer that comes after the job's end (a Redis slow to answer) judges nothing.
      if (looksStop.signal.aborted || !Array.isArray(counts) || Number(counts[1]) !== 0) return true;
    }
    return false;
  };

  return {
    ...(terminal ? { terminal } : {}),
    stage: (stage: LiveStageName) => send({ type: 'stage', stage }),
    output: (stage, stream, chunk) => send({ type: 'output', stage, stream, data: chunk }),
    exit: (stage, result: StageResult) => send({ type: 'exit', stage, exit: liveExitOf(result) }),
    sessionListens,
    get started() {
      return startedReceivers !== undefined;
    },
    connectStdin(program: LiveStdin) {
      start();
      stdin = program;
      for (const input of heldInput) deliver(program, input);
      heldInput = [];
    },
    async close() {
      looksStop.abort();
      toldStart({ of: undefined });
      if (!startedReceivers) {
        // Told nothing, so no `end` either: the session, which has heard no word from a worker,
        // still holds the input (the job was cancelled, refused, or goes back to the queue unrun,
        // and its session's wait for the record ends it, or a worker that runs it next speaks).
        await settledWithin(inputs.unlisten(inputChannel), CLOSE_REDIS_AWAY_MS);
        return;
      }
      send({ type: 'end' });
      await settledWithin(Promise.all([events.flushed(), inputs.unlisten(inputChannel)]), CLOSE_REDIS_AWAY_MS);
    },
  };
}
