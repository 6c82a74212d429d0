// Redis commands per job, by process: the whole service (private redis-server, `cellblock api`,
// `cellblock worker`), one python hello at a time through each front's synchronous route, with
// Redis's MONITOR attributing every command to the connection (by its client name) that sent it.
// Background traffic (heartbeats, stall checks, idle blocking reads) is measured over an equal idle
// stretch and subtracted, so the figures are what one job adds.
//
//   node --import tsx loadtest/redis-commands.ts [--jobs N] [--verbose]
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadRuntimes } from '../src/images/runtimes.js';
import { runInterruptible } from './service/interrupt.js';
import { startStack } from './service/stack.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '20' }, verbose: { type: 'boolean', default: false } } });
const JOBS = Number(values.jobs);

const python = loadRuntimes().find((runtime) => runtime.id === 'python');
if (!python) throw new Error('no python runtime in images/runtimes');
const source = python.helloWorld.source;

/** One synchronous job per front: the route, and its body. */
const fronts: { name: string; path: string; body: unknown }[] = [
  { name: 'v1 POST /v1/jobs?wait=true', path: '/v1/jobs?wait=true', body: { language: 'python', source } },
  { name: 'piston POST /api/v2/execute', path: '/api/v2/execute', body: { language: 'python', version: '*', files: [{ content: source }] } },
  {
    name: 'judge0 POST /submissions?wait=true',
    path: '/submissions?wait=true&base64_encoded=false',
    body: { language_id: 71, source_code: source },
  },
];

type Tally = Map<string, Map<string, number>>;

function add(tally: Tally, client: string, command: string): void {
  let commands = tally.get(client);
  if (!commands) tally.set(client, (commands = new Map()));
  commands.set(command, (commands.get(command) ?? 0) + 1);
}

/** Connection names without the per-process id: what kind of connection, of which process. */
function role(name: string): string {
  return name.replace(/-[^-]*-\d+-[\w-]{6}$/, '').replace(/-\d+$/, '') || '(unnamed)';
}

const stack = await startStack({ logLevel: 'warn' });
const admin = new Redis(stack.redisUrl);
// MONITOR answers on a connection of its own; the client it was asked through is closed too, or
// it would reconnect forever to the Redis the stack stops.
const monitorOwner = new Redis(stack.redisUrl);
const monitor = await monitorOwner.monitor();
await runInterruptible('redis-commands', async () => {
  const names = new Map<string, string>();
  const refreshNames = async () => {
    const list = (await admin.client('LIST')) as string;
    for (const line of list.split('\n')) {
      const addr = /addr=(\S+)/.exec(line)?.[1];
      const name = /name=(\S*)/.exec(line)?.[1];
      if (addr) names.set(addr, role(name ?? ''));
    }
  };
  let tally: Tally = new Map();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const command = String(args[0]).toLowerCase();
    // Lua scripts: name them by the script's first key (BullMQ's scripts take the queue keys).
    const label = command === 'evalsha' || command === 'eval' ? `${command} ${String(args[3] ?? '').split(':').slice(-1)[0]}` : command;
    add(tally, source, label);
  });
  const measure = async (work: () => Promise<void>): Promise<{ tally: Tally; ms: number }> => {
    tally = new Map();
    const started = performance.now();
    await work();
    await sleep(200);
    const ms = performance.now() - started;
    await refreshNames();
    const byRole: Tally = new Map();
    for (const [source, commands] of tally) {
      for (const [command, count] of commands) for (let i = 0; i < count; i++) add(byRole, names.get(source) ?? source, command);
    }
    return { tally: byRole, ms };
  };
  const total = (commands: Map<string, number>) => [...commands.values()].reduce((sum, count) => sum + count, 0);
  await sleep(1000);
  for (const front of fronts) {
    const post = async () => {
      const response = await fetch(stack.url + front.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(front.body) });
      const text = await response.text();
      if (!response.ok) throw new Error(`${front.path}: ${response.status} ${text}`);
    };
    await post();
    const busy = await measure(async () => {
      for (let job = 0; job < JOBS; job++) await post();
    });
    const idle = await measure(() => sleep(busy.ms - 200));
    console.log(`\n${front.name}: ${JOBS} jobs, one at a time; Redis commands per job, background (equal idle time) subtracted`);
    for (const [client, commands] of [...busy.tally].sort()) {
      const background = idle.tally.get(client);
      const perJob = (total(commands) - (background ? total(background) : 0)) / JOBS;
      console.log(`  ${client.padEnd(34)} ${perJob.toFixed(1).padStart(5)}`);
      if (values.verbose) {
        for (const [command, count] of [...commands].sort((a, b) => b[1] - a[1])) {
          const perJobCommand = (count - (background?.get(command) ?? 0)) / JOBS;
          if (Math.abs(perJobCommand) >= 0.05) console.log(`      ${command.padEnd(30)} ${perJobCommand.toFixed(2).padStart(6)}`);
        }
      }
    }
  }
}, async () => {
  monitor.disconnect();
  monitorOwner.disconnect();
  admin.disconnect();
  await stack.stop();
});
