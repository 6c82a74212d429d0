// What a live job adds to a keystroke: the round trip of one line typed into a live session
// (WebSocket -> API -> Redis -> worker -> the program's stdin pipe, and its echo back the same
// way) against the same echo program run bare, its pipes this process's own, side by side in one
// run (sessions alternate with bare runs); and the same session on a terminal (`terminal` in the
// submit: the line echoed by the terminal, then by the program, as CR LF). Also a session's start:
// `submit` sent to the program's first output, against spawning the program bare to its first
// output. The service is the load
// test's stack (`cellblock api` and `cellblock worker` processes, a private redis-server); the
// bare program is the host's python3 (an echo's round trip is the pipes', not the interpreter's).
//
//   node --import tsx loadtest/live-echo.ts [--sessions N] [--lines N] [--gap-ms MS]
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { runInterruptible } from './service/interrupt.js';
import { startStack, type Stack } from './service/stack.js';
import { distribution, type Distribution } from './service/stats.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '10' },
    lines: { type: 'string', default: '50' },
    'gap-ms': { type: 'string', default: '20' },
  },
});
const SESSIONS = Number(values.sessions);
const LINES = Number(values.lines);
/** Between two lines: a typist's pause, so that each round trip starts from idle processes. */
const GAP_MS = Number(values['gap-ms']);
const BARE_PYTHON = '/usr/bin/python3';

/** Prints "ready", then echoes each line as it comes. */
const ECHO = 'import sys\nprint("ready", flush=True)\nfor line in sys.stdin:\n    sys.stdout.write(line)\n    sys.stdout.flush()\n';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One side's session: start it, then send a line and wait for its echo, LINES times. */
interface Side {
  start(): Promise<{ startMs: number; echo(line: string): Promise<number>; end(): Promise<void> }>;
}

/** What a side's program writes, as it comes: `waitFor(text)` resolves once what came since the
 * last wait ends with `text` (an echo may come in several chunks). */
function receiver() {
  let received = '';
  let waiting: { text: string; resolve: () => void } | undefined;
  return {
    add(chunk: string) {
      received += chunk;
      if (waiting && received.endsWith(waiting.text)) {
        const { resolve } = waiting;
        waiting = undefined;
        received = '';
        resolve();
      }
    },
    waitFor(text: string): Promise<void> {
      return new Promise((resolve, reject) => {
        if (received.endsWith(text)) {
          received = '';
          resolve();
          return;
        }
        waiting = { text, resolve };
        setTimeout(() => reject(new Error(`no echo of ${JSON.stringify(text)} in 30 s`)), 30_000).unref();
      });
    },
  };
}

/** Milliseconds from writing `line` to the end of `echo` (the line itself, by default). */
async function roundTrip(write: (line: string) => void, output: ReturnType<typeof receiver>, line: string, echo = line): Promise<number> {
  const sentAt = performance.now();
  write(line);
  await output.waitFor(echo);
  return performance.now() - sentAt;
}

/** What a terminal writes for `text` (a newline as CR LF). */
const asTerminal = (text: string) => text.replaceAll('\n', '\r\n');

/** A live session, on a terminal or on pipes. */
function serviceSide(stack: Stack, terminal: boolean): Side {
  return {
    async start() {
      const socket = new WebSocket(`${stack.url.replace(/^http/, 'ws')}/v1/live`);
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      const output = receiver();
      let done: (() => void) | undefined;
      const closed = new Promise<void>((resolve) => (done = resolve));
      socket.on('message', (raw) => {
        const message = JSON.parse(raw.toString()) as { type: string; stream?: string; data?: string; error?: unknown };
        if (message.type === 'output' && message.stream === 'stdout') output.add(message.data!);
        if (message.type === 'error') process.stderr.write(`live-echo: the session refused: ${JSON.stringify(message.error)}\n`);
      });
      socket.on('close', () => done!());
      const startedAt = performance.now();
      const job = { language: 'python', source: ECHO, limits: { wallTimeMs: 30_000 } };
      socket.send(JSON.stringify({ type: 'submit', job, ...(terminal ? { terminal: { rows: 24, cols: 80 } } : {}) }));
      await output.waitFor(terminal ? asTerminal('ready\n') : 'ready\n');
      const startMs = performance.now() - startedAt;
      return {
        startMs,
        // On a terminal the typed line comes back twice: the terminal's echo, then the program's.
        echo: (line) => roundTrip((data) => socket.send(JSON.stringify({ type: 'stdin', data })), output, line, terminal ? asTerminal(line + line) : line),
        async end() {
          socket.send(JSON.stringify({ type: 'stdinEnd' }));
          await closed;
        },
      };
    },
  };
}

const bareSide: Side = {
  async start() {
    const startedAt = performance.now();
    const child = spawn(BARE_PYTHON, ['-u', '-c', ECHO], { stdio: ['pipe', 'pipe', 'inherit'] });
    const output = receiver();
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => output.add(chunk));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await output.waitFor('ready\n');
    const startMs = performance.now() - startedAt;
    return {
      startMs,
      echo: (line) => roundTrip((data) => child.stdin.write(data), output, line),
      async end() {
        child.stdin.end();
        await exited;
      },
    };
  },
};

const figures = (d: Distribution) => `p50 ${d.p50.toFixed(2)}  p90 ${d.p90.toFixed(2)}  p99 ${d.p99.toFixed(2)}  (${d.count})`;

let stack: Stack | undefined;
await runInterruptible(
  'live-echo',
  async () => {
    stack = await startStack();
    const sides = { service: serviceSide(stack, false), terminal: serviceSide(stack, true), bare: bareSide };
    const samples = {
      service: { start: [] as number[], echo: [] as number[] },
      terminal: { start: [] as number[], echo: [] as number[] },
      bare: { start: [] as number[], echo: [] as number[] },
    };
    const orders = [['service', 'terminal', 'bare'], ['bare', 'service', 'terminal'], ['terminal', 'bare', 'service']] as const;
    // A first session of each, not counted: the worker's first live run makes its root on the spot.
    for (const side of Object.values(sides)) {
      const session = await side.start();
      await session.echo('warm\n');
      await session.end();
    }
    for (let round = 0; round < SESSIONS; round++) {
      for (const name of orders[round % orders.length]!) {
        const session = await sides[name].start();
        samples[name].start.push(session.startMs);
        for (let line = 0; line < LINES; line++) {
          await sleep(GAP_MS);
          samples[name].echo.push(await session.echo(`line ${round} ${line}\n`));
        }
        await session.end();
      }
    }
    const echo = { service: distribution(samples.service.echo), terminal: distribution(samples.terminal.echo), bare: distribution(samples.bare.echo) };
    const start = { service: distribution(samples.service.start), terminal: distribution(samples.terminal.start), bare: distribution(samples.bare.start) };
    const added = (d: Distribution) => `p50 +${(d.p50 - echo.bare.p50).toFixed(2)}  p90 +${(d.p90 - echo.bare.p90).toFixed(2)}`;
    console.log(`live echo: ${SESSIONS} sessions a side, ${LINES} lines each, ${GAP_MS} ms between lines (ms)`);
    console.log(`  line round trip  service  ${figures(echo.service)}  (pipes)`);
    console.log(`                   terminal ${figures(echo.terminal)}  (the terminal's echo, then the program's)`);
    console.log(`                   bare     ${figures(echo.bare)}`);
    console.log(`                   added    service ${added(echo.service)};  terminal ${added(echo.terminal)}`);
    console.log(`  session start    service  ${figures(start.service)}  (submit to the program's first output)`);
    console.log(`                   terminal ${figures(start.terminal)}`);
    console.log(`                   bare     ${figures(start.bare)}  (spawn to its first output)`);
  },
  async () => {
    await stack?.stop();
  },
);
