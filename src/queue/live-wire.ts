// A live job's messages between the API that holds its session and the worker that runs it, over
// two Redis pub/sub channels per job (keys.ts: liveEvents, liveInput). JSON with bytes in base64,
// one message per event; pub/sub keeps one publisher's messages in order. A message that does not
// parse is dropped: the channels are ours, and a malformed one can only come from another version.
import type { LiveEvent, LiveExit, LiveStage } from '../jobs/model.js';
import { isTerminalSize } from '../executor/check.js';
import { mergedBytes } from './serial-outbox.js';
import type { StageResult, TerminalSize } from '../executor/types.js';

/** Worker to API: the LiveEvents but `inputLost` (the API's own) and `end`'s record, which the
 * API reads from the job itself; `end` here says that no event follows. */
export type WireEvent = Exclude<LiveEvent, { type: 'end' } | { type: 'inputLost' }> | { type: 'end' };

/** API to worker. */
export type WireInput = { type: 'stdin'; data: Buffer } | { type: 'stdinEnd' } | ({ type: 'resize' } & TerminalSize);

const STAGES: ReadonlySet<string> = new Set<LiveStage>(['compile', 'run']);
const STREAMS: ReadonlySet<string> = new Set(['stdout', 'stderr']);

export function liveExitOf(result: StageResult): LiveExit {
  return {
    verdict: result.verdict,
    exitCode: result.exitCode,
    signal: result.signal,
    signalName: result.signalName,
    cpuTimeMs: result.metrics.cpuTimeMs,
    wallTimeMs: result.metrics.wallTimeMs,
    peakMemoryBytes: result.metrics.peakMemoryBytes,
  };
}

/** Two inputs not yet delivered as one, where that changes nothing for the program: adjacent
 * stdin merged (up to mergedBytes' bound), and of adjacent sizes the last; undefined otherwise. */
export function mergedInput(last: WireInput, next: WireInput): WireInput | undefined {
  if (last.type === 'resize' && next.type === 'resize') return next;
  const data = last.type === 'stdin' && next.type === 'stdin' ? mergedBytes(last.data, next.data) : undefined;
  return data && { type: 'stdin', data };
}

export function encodeEvent(event: WireEvent): string {
  if (event.type === 'output') return JSON.stringify({ ...event, data: event.data.toString('base64') });
  return JSON.stringify(event);
}

export function encodeInput(input: WireInput): string {
  return JSON.stringify(input.type === 'stdin' ? { type: 'stdin', data: input.data.toString('base64') } : input);
}

function parseObject(message: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(message);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function decodeEvent(message: string): WireEvent | undefined {
  const value = parseObject(message);
  if (!value) return undefined;
  const stage = typeof value.stage === 'string' && STAGES.has(value.stage) ? (value.stage as LiveStage) : undefined;
  switch (value.type) {
    case 'started':
    case 'end':
      return { type: value.type };
    case 'stage':
      return stage && { type: 'stage', stage };
    case 'output':
      if (!stage || typeof value.stream !== 'string' || !STREAMS.has(value.stream) || typeof value.data !== 'string') return undefined;
      return { type: 'output', stage, stream: value.stream as 'stdout' | 'stderr', data: Buffer.from(value.data, 'base64') };
    case 'exit':
      if (!stage || value.exit === null || typeof value.exit !== 'object') return undefined;
      return { type: 'exit', stage, exit: value.exit as LiveExit };
    default:
      return undefined;
  }
}

export function decodeInput(message: string): WireInput | undefined {
  const value = parseObject(message);
  if (value?.type === 'stdinEnd') return { type: 'stdinEnd' };
  if (value?.type === 'stdin' && typeof value.data === 'string') return { type: 'stdin', data: Buffer.from(value.data, 'base64') };
  if (value?.type === 'resize') {
    const size = { rows: value.rows, cols: value.cols };
    // Checked here, where the engine would throw later (on the subscriber's event loop turn).
    if (isTerminalSize(size)) return { type: 'resize', ...size };
  }
  return undefined;
}
