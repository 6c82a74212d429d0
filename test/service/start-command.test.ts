// `cellblock start` as a user runs it (scripts/start.sh ends in it): no Redis URL, so it starts a
// private redis-server, a supervised worker process and the API; a Python hello world goes
// through all of them; a worker that dies is replaced; SIGTERM stops every one of them, and so
// does SIGKILL of the command; nothing stays mounted or running.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { freeLoopbackPort, freeLoopbackPortExcept } from '../../src/queue/redis-server.js';
import { mountPointsUnder } from '../../src/pool/mountinfo.js';
import { detectCgroupLayout } from '../../src/sandbox/cgroups/detect.js';
import { checkWorkerMachine } from '../../src/bin/worker-preflight.js';
import { dataDirFromEnv } from '../../src/images/paths.js';
import { childPids, processExists, processGroup } from '../helpers/processes.js';
import { start as startRedis, type TestRedis } from '../helpers/redis.js';
import { removeTestCgroup } from '../helpers/test-cgroups.js';
import { until } from '../helpers/until.js';
import { builtRuntimes, cellblockSource, getJson, pollJob, postJson, runCellblockToExit, scratchDir, spawnCellblock, type CellblockProcess } from './fixtures.js';

const { runtimes } = builtRuntimes();
const skip = !runtimes.some((runtime) => runtime.id === 'python') && 'the python image is not built (run: bin/cellblock images build python)';

/** The pino line with message `msg` in `output`, parsed. */
function logLine(output: string, msg: string): Record<string, unknown> | undefined {
  const line = output.split('\n').find((text) => text.includes(`"msg":"${msg}"`));
  return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** `cellblock start` with everything it writes under `dir`, on free ports. */
async function startCellblock(dir: string): Promise<{ started: CellblockProcess; port: number; redisPort: number }> {
  const port = await freeLoopbackPort();
  const started = await spawnCellblock(['start'], '"api listening"', {
    CELLBLOCK_REDIS_URL: undefined,
    CELLBLOCK_PORT: String(port),
    CELLBLOCK_REDIS_DATA_DIR: path.join(dir, 'redis'),
    CELLBLOCK_POOL_STATE_DIR: path.join(dir, 'pool'),
    CELLBLOCK_WORKER_PROCESSES: '1',
    CELLBLOCK_WORKER_CONCURRENCY: '1',
  });
  const redisUrl = String(logLine(started.output(), 'private redis-server started')?.url);
  const redisPort = Number(new URL(redisUrl).port);
  assert.ok(await answers(redisPort), `the private redis-server answers on ${redisUrl}`);
  return { started, port, redisPort };
}

/** For a start that failed: the scratch dir goes too (its Redis and worker died with it), then the
 * error is thrown on. */
function removing(scratch: { remove(): Promise<void> }): (error: unknown) => Promise<never> {
  return async (error) => {
    await scratch.remove();
    throw error;
  };
}

function countLines(output: string, msg: string): number {
  return output.split('\n').filter((text) => text.includes(`"msg":"${msg}"`)).length;
}

/** The pids of the worker processes the supervisor started, in order. */
function supervisedWorkerPids(output: string): number[] {
  return output
    .split('\n')
    .filter((text) => text.includes('"msg":"worker process started"'))
    .map((line) => Number((JSON.parse(line) as { childPid?: number }).childPid));
}

/** The mount agents of a worker process (src/pool/mount-agent.py, one per pool owner). */
function mountAgentPids(workerPid: number): number[] {
  return childPids(workerPid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('mount-agent.py');
    } catch {
      return false; // exited meanwhile
    }
  });
}

/** The pids of the private redis-servers `start` ran, in order (the first, then each restart). */
function privateRedisPids(output: string): number[] {
  return output
    .split('\n')
    .filter((text) => text.includes('"msg":"private redis-server started"') || text.includes('"msg":"private redis-server started again"'))
    .map((line) => Number((JSON.parse(line) as { pid?: number }).pid));
}

/** The pid of the worker process the supervisor started last. */
function supervisedWorkerPid(output: string): number {
  const pid = supervisedWorkerPids(output).at(-1) ?? 0;
  assert.ok(pid > 0 && processExists(pid), 'the supervised worker process runs');
  return pid;
}

async function waitReady(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  let ready = await getJson(`http://127.0.0.1:${port}/readyz`);
  while (ready.status !== 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    ready = await getJson(`http://127.0.0.1:${port}/readyz`);
  }
  assert.equal(ready.status, 200, `ready once the worker process is up: ${JSON.stringify(ready.json)}`);
}

// `cellblock start` picks its private Redis a free port before its API binds CELLBLOCK_PORT, so a
// free port could be the API's (a clean-clone run of this file on 2026-12-05 drew the same port
// for both: "cannot listen on 127.0.0.1:42333 ... EADDRINUSE").
test('a private Redis passes over a free port that is the API\'s, and gives up after many draws', async () => {
  const drawn = [4242, 4242, 5353];
  assert.equal(await freeLoopbackPortExcept([4242], async () => drawn.shift()!), 5353);
  assert.deepEqual(drawn, []);
  await assert.rejects(freeLoopbackPortExcept([4242], async () => 4242), /no free loopback port other than 4242/);
  assert.notEqual(await freeLoopbackPortExcept([]), 0);
});

test('a worker leaves SIGINT to a supervisor only when forked by ours: IPC, and the variable naming its parent', async () => {
  const workerCommand = path.join(path.dirname(cellblockSource), 'worker-command.ts');
  /** isSupervisedWorker() in a child, and whether the variable is left for its own children. */
  const probe = (env: Record<string, string>, ipc: boolean) =>
    new Promise<string>((resolve, reject) => {
      const code = `const { isSupervisedWorker } = await import(${JSON.stringify(workerCommand)}); process.stdout.write(isSupervisedWorker() + ':' + process.env.CELLBLOCK_SUPERVISOR_PID); process.disconnect?.();`;
      const { CELLBLOCK_SUPERVISOR_PID: _inherited, ...base } = process.env;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        env: { ...base, ...env },
        stdio: ['ignore', 'pipe', 'inherit', ...(ipc ? (['ipc'] as const) : [])],
      });
      let out = '';
      child.stdout!.on('data', (chunk) => (out += chunk));
      child.once('error', reject);
      child.once('exit', () => resolve(out));
    });
  const parent = { CELLBLOCK_SUPERVISOR_PID: String(process.pid) };
  assert.equal(await probe(parent, true), 'true:undefined', 'forked by the supervisor');
  assert.equal(await probe(parent, false), 'false:undefined', 'no IPC: started from a shell');
  assert.equal(await probe({}, true), 'false:undefined', "IPC alone (pm2's fork mode), which stops with SIGINT");
  assert.equal(await probe({ CELLBLOCK_SUPERVISOR_PID: '1' }, true), 'false:undefined', 'a variable inherited from elsewhere');
});

test('a stop that comes as start-up ends, after the start-up it aborted had finished, is taken once onShutdown is armed', async () => {
  const processControl = path.join(path.dirname(cellblockSource), 'process-control.ts');
  const code = `
    const { createLogger, guardStartup, onShutdown } = await import(${JSON.stringify(processControl)});
    const startup = guardStartup();
    // The worker became ready; the SIGTERM comes before its shutdown handler is armed.
    process.kill(process.pid, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const keepAlive = setTimeout(() => {}, 10_000); // a ready worker holds its process open
    onShutdown(createLogger('silent', 'test'), async () => { clearTimeout(keepAlive); process.stdout.write('stopped'); }, { startup });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  const startedAt = Date.now();
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(out, 'stopped', 'the orderly stop ran');
  assert.equal(exitCode, 0);
  assert.ok(Date.now() - startedAt < 8000, 'at once, not when the process ran out of work');
});

test("a second signal to a supervisor exits at once, killing its workers first rather than leaving them to stop on as orphans", async () => {
  const processControl = path.join(path.dirname(cellblockSource), 'process-control.ts');
  const code = `
    const { createLogger, onShutdown } = await import(${JSON.stringify(processControl)});
    setTimeout(() => {}, 10_000); // a stop that takes long: the workers' jobs
    onShutdown(createLogger('silent', 'test'), () => new Promise(() => {}), { beforeForcedExit: () => process.stdout.write('workers killed') });
    process.stdout.write('armed');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  await until(() => out === 'armed', 10_000, 10, 'the handlers armed');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  await new Promise((resolve) => setTimeout(resolve, 100));
  child.kill('SIGINT');
  assert.equal(await exited, 1);
  assert.equal(out, 'armedworkers killed');
});

test("a worker process's refused setting stops its supervisor in order, status 78: at once once it runs, else as it comes to run", async () => {
  const processControl = path.join(path.dirname(cellblockSource), 'process-control.ts');
  const code = `
    const { createLogger, watchRedisRefusal } = await import(${JSON.stringify(processControl)});
    const stops = [];
    const stop = (name) => (cause, exitCode) => stops.push([name, cause, exitCode]);
    const starting = watchRedisRefusal(createLogger('silent', 'test'));
    starting.workerRefused(); // during the API's start-up
    stops.push('started');
    starting.running(stop('starting'));
    const running = watchRedisRefusal(createLogger('silent', 'test'));
    running.running(stop('running'));
    stops.push('ran');
    running.workerRefused();
    process.stdout.write(JSON.stringify({ stops, refused: [starting.refused, running.refused] }));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  assert.equal(await new Promise<number | null>((resolve) => child.once('exit', resolve)), 0);
  const cause = 'redis refused a setting of a worker process';
  assert.deepEqual(JSON.parse(out), {
    stops: ['started', ['starting', cause, 78], 'ran', ['running', cause, 78]],
    refused: [false, false], // a worker's refusal, not one of this process's own
  });
});

describe('cellblock start', { skip }, () => {
  test('private Redis, a worker and the API on one machine: hello world, a dead worker replaced, Ctrl-C stops all in order', async () => {
    const scratch = await scratchDir();
    const { started, port, redisPort } = await startCellblock(scratch.dir).catch(removing(scratch));
    const { child } = started;
    try {
      const base = `http://127.0.0.1:${port}`;

      await waitReady(port);
      // A second `start` on the same private Redis data is refused in one line, before it runs anything.
      const second = await runCellblockToExit(['start'], {
        CELLBLOCK_REDIS_URL: undefined,
        CELLBLOCK_PORT: String(await freeLoopbackPortExcept([port, redisPort])),
        CELLBLOCK_REDIS_DATA_DIR: path.join(scratch.dir, 'redis'),
        CELLBLOCK_POOL_STATE_DIR: path.join(scratch.dir, 'pool-second'),
      });
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, /^cellblock: another `cellblock start` runs its private Redis in \S+ \(CELLBLOCK_REDIS_DATA_DIR\)/);
      assert.equal(second.stderr.trim().split('\n').length, 1, `one line, no stack: ${second.stderr}`);
      // The worker says which cgroup version it detected and where its cgroups are. (Its line
      // may come after /readyz's 200: the heartbeat is written first.)
      await until(() => logLine(started.output(), 'worker ready') !== undefined, 10_000, 20, "the worker's ready line");
      const cgroups = logLine(started.output(), 'worker ready')?.cgroups as { version?: string; parents?: string[] } | undefined;
      assert.equal(cgroups?.version, detectCgroupLayout().version);
      assert.ok(cgroups?.parents?.length && cgroups.parents.every((parent) => parent.endsWith('/cellblock')), JSON.stringify(cgroups));

      const hello = await postJson(`${base}/v1/jobs?wait=true`, { language: 'python', source: 'print("hello, world")' });
      assert.equal(hello.status, 200, JSON.stringify(hello.json));
      assert.equal(hello.json.result.verdict, 'ok');
      assert.equal(hello.json.result.stdout, 'hello, world\n');

      // A worker process that dies is replaced; the new one reclaims what the dead one left.
      const firstWorkerPid = supervisedWorkerPid(started.output());
      process.kill(firstWorkerPid, 'SIGKILL');
      await until(() => countLines(started.output(), 'worker ready') >= 2, 60_000, 100, 'a new worker process became ready');
      const again = await postJson(`${base}/v1/jobs?wait=true`, { language: 'python', source: 'print("again")' });
      assert.equal(again.json.result?.stdout, 'again\n', JSON.stringify(again.json));

      const workerPid = supervisedWorkerPid(started.output());
      assert.notEqual(workerPid, firstWorkerPid);
      const agents = mountAgentPids(workerPid);
      assert.ok(agents.length > 0, "the worker's mount agent runs");
      for (const agent of agents) assert.notEqual(processGroup(agent), processGroup(workerPid), 'the agent is outside the terminal\'s foreground group');
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Ctrl-C at a terminal: SIGINT to the foreground process group, the command, its worker and
      // the worker's mount agent alike. The worker stops once, on its supervisor's SIGTERM (a
      // second signal would end its jobs at once); the agent stays for the worker's unmounts.
      for (const pid of agents) process.kill(pid, 'SIGINT');
      process.kill(workerPid, 'SIGINT');
      child.kill('SIGINT');
      assert.equal(await exited, 0, `a clean exit on Ctrl-C:\n${started.output().slice(-2000)}`);
      assert.ok(!started.output().includes('second signal'), `one orderly stop each:\n${started.output().slice(-2000)}`);
      assert.equal(countLines(started.output(), 'private redis-server exited; starting it again'), 0, "`start`'s own stop of its Redis is no crash");
      const workerStop = started.output().split('\n').find((line) => line.includes('"msg":"shutting down"') && line.includes(`"pid":${workerPid}`));
      assert.match(workerStop ?? '', /"signal":"SIGTERM"/, "the worker stopped on its supervisor's SIGTERM");
      assert.ok(!processExists(workerPid), 'the worker process has exited');
      assert.ok(!(await answers(redisPort)), 'the private redis-server has stopped');
      assert.ok(!(await answers(port)), 'the API no longer listens');
      assert.deepEqual(mountPointsUnder(scratch.dir), [], 'the worker left nothing mounted');
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        // A failed test: its worker processes (which follow the command's death) may still be
        // writing the pool's state under the scratch dir; remove it after they are gone.
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
        const pids = supervisedWorkerPids(started.output()).filter((pid) => pid > 0);
        await until(() => !pids.some(processExists), 10_000, 50, 'the worker processes gone').catch(() => {});
      }
      await scratch.remove();
    }
  });

  test("a service manager's stop, SIGTERM to each of its processes at once (systemd's default KillMode=control-group): one orderly stop each", async () => {
    const scratch = await scratchDir();
    const { started, port, redisPort } = await startCellblock(scratch.dir).catch(removing(scratch));
    const { child } = started;
    try {
      await waitReady(port);
      const workerPid = supervisedWorkerPid(started.output());
      const agents = mountAgentPids(workerPid);
      assert.ok(agents.length > 0, "the worker's mount agent runs");
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // The private redis-server too, which stops at once (`start` may start it again for its
      // workers' last writes, and then stops it last).
      for (const pid of [...agents, workerPid, privateRedisPids(started.output())[0]!]) process.kill(pid, 'SIGTERM');
      child.kill('SIGTERM');
      assert.equal(await exited, 0, `a clean exit:\n${started.output().slice(-2000)}`);
      assert.ok(!started.output().includes('second signal'), `one orderly stop each:\n${started.output().slice(-2000)}`);
      for (const pid of privateRedisPids(started.output())) assert.ok(!processExists(pid), `redis-server ${pid} has exited`);
      assert.ok(!(await answers(redisPort)), 'nothing answers on the private Redis port');
      await until(() => !processExists(workerPid), 10_000, 50, 'the worker process has exited');
      assert.deepEqual(mountPointsUnder(scratch.dir), [], 'the worker unmounted everything: its agent outlived the signal');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const pids = supervisedWorkerPids(started.output()).filter((pid) => pid > 0);
      await until(() => !pids.some(processExists), 10_000, 50, 'the worker processes gone').catch(() => {});
      await scratch.remove();
    }
  });

  test('its redis-server killed with SIGKILL is started again, on its port and data: jobs accepted before the kill finish after it; one that cannot start again stops `start`, exit 1', async () => {
    const scratch = await scratchDir();
    const { started, port, redisPort } = await startCellblock(scratch.dir).catch(removing(scratch));
    const { child } = started;
    const squatter = net.createServer((socket) => socket.destroy());
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitReady(port);
      // One job running when Redis dies, one queued behind it (one worker slot).
      const running = await postJson(`${base}/v1/jobs`, { language: 'python', source: 'import time\nprint("started", flush=True)\ntime.sleep(3)\nprint("woke")' });
      const queued = await postJson(`${base}/v1/jobs`, { language: 'python', source: 'print("queued")' });
      assert.deepEqual([running.status, queued.status], [202, 202]);
      await until(async () => (await getJson(`${base}/v1/jobs/${running.json.id}`)).json.status === 'running', 30_000, 50, 'the first job running');

      const [firstRedisPid] = privateRedisPids(started.output());
      assert.ok(firstRedisPid && processExists(firstRedisPid), 'the private redis-server runs');
      process.kill(firstRedisPid, 'SIGKILL');
      await until(() => countLines(started.output(), 'private redis-server started again') === 1, 30_000, 50, 'the redis-server started again');
      const exit = logLine(started.output(), 'private redis-server exited; starting it again');
      assert.deepEqual([exit?.pid, exit?.signal, exit?.level], [firstRedisPid, 'SIGKILL', 40], JSON.stringify(exit));
      const secondRedisPid = privateRedisPids(started.output())[1]!;
      assert.ok(secondRedisPid !== firstRedisPid && processExists(secondRedisPid));
      assert.ok(await answers(redisPort), 'on the same port');

      // The API and the worker reconnect by themselves; the jobs come back from the append-only file.
      const first = await pollJob(base, running.json.id, 60_000);
      assert.deepEqual([first.status, first.result?.stdout], ['done', 'started\nwoke\n'], JSON.stringify(first));
      const second = await pollJob(base, queued.json.id, 60_000);
      assert.deepEqual([second.status, second.result?.stdout], ['done', 'queued\n'], JSON.stringify(second));
      const after = await postJson(`${base}/v1/jobs?wait=true`, { language: 'python', source: 'print("after")' });
      assert.equal(after.json.result?.stdout, 'after\n', JSON.stringify(after.json));
      assert.equal((await getJson(`${base}/readyz`)).status, 200);

      // Killed again, and its port taken meanwhile by another program: each restart fails at once.
      const workerPids = supervisedWorkerPids(started.output());
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      process.kill(secondRedisPid, 'SIGKILL');
      for (let tries = 0; ; tries++) {
        assert.ok(tries < 2000, 'the port taken');
        const listening = await new Promise<boolean>((resolve) => {
          squatter.once('error', () => resolve(false));
          squatter.listen(redisPort, '127.0.0.1', () => resolve(true));
        });
        if (listening) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const code = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 60_000).unref())]);
      assert.equal(code, 1, `given up, \`start\` stops with exit 1:\n${started.output().slice(-3000)}`);
      const stderrLine = started.output().split('\n').find((line) => line.startsWith('cellblock: '));
      assert.match(stderrLine ?? '', new RegExp(`^cellblock: the private redis-server's port ${redisPort} was taken by another program while it was down \\(data in \\S+\\); not starting it again$`), started.output().slice(-3000));
      assert.equal(countLines(started.output(), 'private redis-server started again'), 1, 'no restart succeeded');
      await until(() => !workerPids.some(processExists), 30_000, 100, 'its worker processes stopped');
      assert.deepEqual(mountPointsUnder(scratch.dir), [], 'the worker left nothing mounted');
    } finally {
      squatter.close();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      // Orphaned without Redis, a worker takes a while to see it gone before it unmounts its pool.
      const pids = supervisedWorkerPids(started.output()).filter((pid) => pid > 0);
      await until(() => !pids.some(processExists), 30_000, 100, 'the worker processes gone').catch(() => {});
      await scratch.remove();
    }
  });

  for (const moment of ['while its worker starts', 'once its worker is ready'] as const) {
    test(`killed with SIGKILL ${moment}: its worker process and its redis-server go with it`, async () => {
      const scratch = await scratchDir();
      const { started, port, redisPort } = await startCellblock(scratch.dir).catch(removing(scratch));
      const { child } = started;
      const workerPid = supervisedWorkerPid(started.output());
      try {
        if (moment === 'once its worker is ready') await waitReady(port);
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
        await until(() => !processExists(workerPid), 30_000, 100, 'the orphaned worker process shut down');
        await until(async () => !(await answers(redisPort)), 10_000, 100, 'the private redis-server stopped');
        assert.deepEqual(mountPointsUnder(scratch.dir), [], 'the worker left nothing mounted');
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        // Failed above: stop the orphan ourselves, so that it releases the scratch dir.
        if (processExists(workerPid)) {
          process.kill(workerPid, 'SIGTERM');
          await until(() => !processExists(workerPid), 30_000, 100).catch(() => {});
        }
        await scratch.remove();
      }
    });
  }
});

describe('cellblock api', () => {
  test('starts while Redis is away: health 200, jobs 503 with Retry-After, then serves once Redis is up', async () => {
    const redisPort = await freeLoopbackPort();
    // Not the port kept for Redis: both are free until bound.
    const port = await freeLoopbackPortExcept([redisPort]);
    const api = await spawnCellblock(['api'], '"api listening"', {
      CELLBLOCK_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      CELLBLOCK_PORT: String(port),
    });
    let redis: TestRedis | undefined;
    try {
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await getJson(`${base}/healthz`)).status, 200);
      const refused = await postJson(`${base}/v1/jobs`, { language: 'python', source: 'print(1)' });
      assert.equal(refused.status, 503, JSON.stringify(refused.json));
      assert.equal(refused.json.error.code, 'queue_unavailable');
      assert.ok(Number(refused.headers.get('retry-after')) > 0);
      assert.equal((await getJson(`${base}/readyz`)).json.redis, 'unreachable');

      redis = await startRedis(redisPort);
      let accepted = refused;
      const deadline = Date.now() + 30_000;
      while (accepted.status !== 202 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        accepted = await postJson(`${base}/v1/jobs`, { language: 'python', source: 'print(1)' });
      }
      assert.equal(accepted.status, 202, 'accepted once Redis is reachable');
      assert.equal((await getJson(`${base}/v1/jobs/${accepted.json.id}`)).json.status, 'queued');
    } finally {
      const exited = new Promise((resolve) => api.child.once('exit', resolve));
      api.child.kill('SIGTERM');
      await exited;
      await redis?.stop();
    }
  });

  test('CELLBLOCK_HOST=0.0.0.0: the `api listening` line names that address and the port taken, not a loopback URL', async () => {
    const redis = await startRedis();
    const api = await spawnCellblock(['api'], '"api listening"', { CELLBLOCK_REDIS_URL: redis.url, CELLBLOCK_HOST: '0.0.0.0', CELLBLOCK_PORT: '0' });
    try {
      const url = new URL(String(logLine(api.output(), 'api listening')?.url));
      // Fastify's own answer named the first interface's address: http://127.0.0.1:<port>.
      assert.equal(url.hostname, '0.0.0.0', api.output());
      assert.equal((await getJson(`http://127.0.0.1:${url.port}/healthz`)).status, 200);
    } finally {
      const exited = new Promise((resolve) => api.child.once('exit', resolve));
      api.child.kill('SIGTERM');
      await exited;
      await redis.stop();
    }
  });

  test('a port it cannot take is one line naming the settings, exit 1', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const { code, stderr } = await runCellblockToExit(['api'], { CELLBLOCK_REDIS_URL: `redis://127.0.0.1:${await freeLoopbackPort()}`, CELLBLOCK_PORT: String(port) });
      assert.equal(code, 1, stderr);
      assert.match(stderr, new RegExp(`^cellblock: cannot listen on 127\\.0\\.0\\.1:${port} \\(CELLBLOCK_HOST, CELLBLOCK_PORT\\): .*EADDRINUSE`));
      assert.equal(stderr.trim().split('\n').length, 1, `one line, no stack: ${stderr}`);
    } finally {
      taken.close();
    }
  });

  test('stops on SIGTERM while Redis is away, instead of waiting for it for ever', async () => {
    const redisPort = await freeLoopbackPort();
    const api = await spawnCellblock(['api'], '"api listening"', {
      CELLBLOCK_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      CELLBLOCK_PORT: String(await freeLoopbackPortExcept([redisPort])),
    });
    const exited = new Promise<number | null>((resolve) => api.child.once('exit', (code) => resolve(code)));
    api.child.kill('SIGTERM');
    // BullMQ's close waited for the unreachable Redis: the process never exited.
    const outcome = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 20_000).unref())]);
    if (outcome === 'running') api.child.kill('SIGKILL');
    assert.equal(outcome, 0, api.output());
  });

  test('sleeps while idle: its main thread wakes a few times a second, not at every 10 ms', async () => {
    const redis = await startRedis();
    const port = await freeLoopbackPort();
    const api = await spawnCellblock(['api'], '"api listening"', { CELLBLOCK_REDIS_URL: redis.url, CELLBLOCK_PORT: String(port) });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000)); // start-up settles
      const pid = api.child.pid!;
      const switches = () => {
        const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
        return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)![1]) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)![1]);
      };
      const before = switches();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const wakes = switches() - before;
      // prom-client's event-loop lag sampling at its default 10 ms made ~200 here.
      assert.ok(wakes < 80, `the idle API's main thread was switched in ${wakes} times in 2 s`);
    } finally {
      const exited = new Promise((resolve) => api.child.once('exit', resolve));
      api.child.kill('SIGTERM');
      await exited;
      await redis.stop();
    }
  });
});

describe('cellblock worker under a delegated cgroup', { skip }, () => {
  test('CELLBLOCK_CGROUP_BASE=delegated: its sandboxes go under the cgroup it was started in, and go with it', async () => {
    // A unit's cgroup in every hierarchy, as systemd makes one for a service with Delegate=yes.
    const layout = detectCgroupLayout();
    const mounts = layout.version === 'v1' ? [...new Set(Object.values(layout.mountPoints))] : [layout.mountPoint];
    const units = mounts.map((mount) => path.join(mount, 'cellblock', `test-worker-unit-${process.pid}`));
    for (const unit of units) mkdirSync(unit, { recursive: true });
    const scratch = await scratchDir();
    const redis = await startRedis();
    let worker: CellblockProcess | undefined;
    try {
      worker = await spawnCellblock(
        ['worker', '--single'],
        '"worker ready"',
        { CELLBLOCK_REDIS_URL: redis.url, CELLBLOCK_POOL_STATE_DIR: scratch.dir, CELLBLOCK_CGROUP_BASE: 'delegated' },
        60_000,
        units,
      );
      await until(() => logLine(worker!.output(), 'worker ready') !== undefined, 10_000, 20, "the worker's ready line");
      const cgroups = logLine(worker.output(), 'worker ready')?.cgroups as { parents?: string[] } | undefined;
      const parents = units.map((unit) => path.join(unit, 'cellblock'));
      assert.deepEqual(cgroups?.parents?.toSorted(), parents.toSorted(), JSON.stringify(cgroups));
      // Nothing marks these cgroups as delegated: one warning, naming (v1) each controller's parent.
      const unmarked = () => worker!.output().split('\n').filter((line) => line.includes('CELLBLOCK_CGROUP_BASE=delegated: nothing marks'));
      await until(() => unmarked().length > 0, 10_000, 20, 'the warning that nothing marks the cgroup');
      assert.equal(unmarked().length, 1);
      if (layout.version === 'v1') {
        const byController = Object.fromEntries(Object.entries(layout.mountPoints).map(([controller, mount]) => [controller, path.join(mount, 'cellblock', `test-worker-unit-${process.pid}`, 'cellblock')]));
        assert.deepEqual(JSON.parse(unmarked()[0]!).parents, byController);
      }
      const instances = (parent: string) => readdirSync(parent).filter((name) => name !== 'host-processes' && statSync(path.join(parent, name)).isDirectory());
      assert.equal(instances(parents[0]!).length, 1, "the worker's instance, with its pool's containers, is under the unit");
      const exited = new Promise((resolve) => worker!.child.once('exit', resolve));
      worker.child.kill('SIGTERM');
      await exited;
      for (const parent of parents) assert.deepEqual(existsSync(parent) ? instances(parent) : [], [], `nothing of the worker's is left under ${parent}`);
      assert.deepEqual(mountPointsUnder(scratch.dir), [], 'the worker unmounted its pool');
    } finally {
      // Failed above: an orderly stop, so that the worker unmounts its pool (a SIGKILL would leave
      // the scratch dir's mounts), then whatever is left in the unit's cgroups goes.
      const child = worker?.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await until(() => child.exitCode !== null || child.signalCode !== null, 30_000, 100).catch(() => child.kill('SIGKILL'));
      }
      for (const unit of units) await removeTestCgroup(unit);
      await redis.stop();
      await scratch.remove();
    }
  });
});

describe('cellblock worker on a machine that cannot run jobs', () => {
  test('refused in one line before any worker starts: not root; no image built; no worker process asked for', { skip: process.getuid?.() !== 0 && 'runs the command as root: as another user, its root check comes first' }, async () => {
    await assert.rejects(checkWorkerMachine({ dataDir: dataDirFromEnv(), cgroupBase: 'root' }, runtimes, 1000), /a worker needs root/);
    const scratch = await scratchDir();
    try {
      const redis = { CELLBLOCK_REDIS_URL: `redis://127.0.0.1:${await freeLoopbackPort()}` };
      for (const command of ['worker', 'start']) {
        const { code, stderr } = await runCellblockToExit([command], { ...redis, CELLBLOCK_DATA_DIR: scratch.dir });
        assert.equal(code, 1, stderr);
        assert.match(stderr, /^cellblock: no language image is built in \/tmp\/cellblock-service-\w+ \(CELLBLOCK_DATA_DIR\)/, command);
        assert.equal(stderr.trim().split('\n').length, 1, `one line, no stack: ${stderr}`);
      }
      const none = await runCellblockToExit(['worker'], { ...redis, CELLBLOCK_WORKER_PROCESSES: '0' });
      assert.equal(none.code, 2, none.stderr);
      assert.equal(none.stderr, 'cellblock: CELLBLOCK_WORKER_PROCESSES: 0 is for `cellblock start` alone (the API without workers): cellblock worker runs at least one worker process\n', 'one line');
    } finally {
      await scratch.remove();
    }
  });

  test('a machine with some images built: the runtimes of the others are named', { skip }, async () => {
    const all = builtRuntimes();
    const { missingImages } = await checkWorkerMachine({ dataDir: dataDirFromEnv(), cgroupBase: 'root' }, [...all.runtimes, { ...all.runtimes[0]!, id: 'unbuilt', image: 'unbuilt-image' }], 0);
    assert.deepEqual(missingImages.map((runtime) => runtime.id), ['unbuilt']);
  });
});
