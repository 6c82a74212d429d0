// A worker's side of a live job: the executor's LiveIo over the job's two channels (live-wire.ts).
// The job's stdin arrives on a subscriber connection of the worker's live jobs (a
// ChannelSubscriber, not the one its cancels come on) and is held until the program runs; events go out on the worker's own connection, in
// order, and `close` sends the last (`end`) once every earlier one is on its way.
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
}

/** Input heard, to the running program. */
function deliver(program: LiveStdin, input: WireInput): void {
  if (input.type === 'stdin') program.write(input.data);
  else if (input.type === 'stdinEnd') program.end();
  else program.resize({ rows: input.rows, cols: input.cols });
}

/** Listens for the job's stdin, then tells its session that the job was taken (`started`): input
 * sent from then on is heard. `terminal`: the job's (JobRequest.terminal). */
export async function openLiveChannel(
  inputs: Pick<ChannelSubscriber, 'listen' | 'unlisten'>,
  publisher: Pick<Redis, 'publish'>,
  keys: RedisKeys,
  jobId: string,
  terminal?: TerminalSize,
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
  const send = (event: WireEvent): void => events.add(event);
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
  send({ type: 'started' });

  return {
    ...(terminal ? { terminal } : {}),
    stage: (stage: LiveStageName) => send({ type: 'stage', stage }),
    output: (stage, stream, chunk) => send({ type: 'output', stage, stream, data: chunk }),
    exit: (stage, result: StageResult) => send({ type: 'exit', stage, exit: liveExitOf(result) }),
    connectStdin(program: LiveStdin) {
      stdin = program;
      for (const input of heldInput) deliver(program, input);
      heldInput = [];
    },
    async close() {
      send({ type: 'end' });
      await settledWithin(Promise.all([events.flushed(), inputs.unlisten(inputChannel)]), CLOSE_REDIS_AWAY_MS);
    },
  };
}
