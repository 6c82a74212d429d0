// cgroup backends: detection from mountinfo, the v2 backend on a v2 host, and cleanupStale
// removing only dead instances' subtrees.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkSandboxCgroups, createSandbox } from '../../src/sandbox/index.js';
import { createCgroupBackend } from '../../src/sandbox/cgroups/index.js';
import { CgroupError } from '../../src/sandbox/cgroups/backend.js';
import { killCgroupPids, killPidsListedTwice, listSubdirs, removeCgroupDirIfEmpty, removeCgroupTree } from '../../src/sandbox/cgroups/cgroupfs.js';
import { cgroupDirUnder, cgroupMountRoots, delegatedV2Base, detectCgroupLayout, parseCgroupMounts, parseProcessCgroups } from '../../src/sandbox/cgroups/detect.js';
import { native, type NativeExit } from '../../src/sandbox/native.js';
import { containerTcpRmem } from '../../src/sandbox/tcp-memory.js';
import { MiB } from '../../src/units.js';
import { busyboxRoot, PROGRAMS_IN_ROOT } from '../helpers/busybox-root.js';
import { processAlive } from '../helpers/processes.js';
import { removeTestCgroup } from '../helpers/test-cgroups.js';
import { until } from '../helpers/until.js';
import { DEFAULT_LIMITS, program, skip, skipUnlessCgroupV2, systemCgroupLayout, text, useFixture } from './fixture.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function mountinfoLine(id: number, mountPoint: string, fsType: string, superOptions: string): string {
  return `${id} 25 0:${id} / ${mountPoint} rw,nosuid,nodev,noexec,relatime shared:${id} - ${fsType} ${fsType} ${superOptions}`;
}

describe('cgroup detection', () => {
  it('finds each v1 controller, co-mounted or not', () => {
    const mountinfo = [
      mountinfoLine(30, '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
      mountinfoLine(31, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
      mountinfoLine(32, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
      mountinfoLine(33, '/sys/fs/cgroup/unified', 'cgroup2', 'rw,nsdelegate'),
      mountinfoLine(34, '/proc', 'proc', 'rw'),
    ].join('\n');
    assert.equal(parseCgroupMounts(mountinfo).length, 4);
    const layout = detectCgroupLayout(mountinfo);
    assert.deepEqual(layout, {
      version: 'v1',
      mountPoints: {
        cpu: '/sys/fs/cgroup/cpu,cpuacct',
        cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
        memory: '/sys/fs/cgroup/memory',
        pids: '/sys/fs/cgroup/pids',
      },
    });
  });

  it('prefers a cgroup2 mount that offers cpu, memory and pids', () => {
    const fake = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-cgroup2-'));
    try {
      fs.writeFileSync(path.join(fake, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
      const mountinfo = [mountinfoLine(31, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'), mountinfoLine(33, fake, 'cgroup2', 'rw')].join('\n');
      assert.deepEqual(detectCgroupLayout(mountinfo), { version: 'v2', mountPoint: fake });
      fs.writeFileSync(path.join(fake, 'cgroup.controllers'), 'cpu io\n');
      assert.throws(() => detectCgroupLayout(mountinfo), /cgroup v1 lacks cpu, cpuacct, pids/);
      // A v2 host (no v1 mount) whose cgroup was not given memory and pids: say which, and how.
      const v2Only = mountinfoLine(33, fake, 'cgroup2', 'rw');
      assert.throws(
        () => detectCgroupLayout(v2Only),
        (error: unknown) =>
          error instanceof CgroupError &&
          error.message.includes(`cgroup v2 at ${fake} lacks memory, pids (its cgroup.controllers: cpu io), and no cgroup v1 hierarchy is mounted`) &&
          error.message.includes('cgroup_disable=') &&
          error.message.includes('did not delegate the controller'),
      );
    } finally {
      fs.rmSync(fake, { recursive: true });
    }
  });

  it('unescapes mount points with spaces', () => {
    const [mount] = parseCgroupMounts(mountinfoLine(40, '/sys/fs/cgroup/my\\040cg', 'cgroup', 'rw,pids'));
    assert.equal(mount?.mountPoint, '/sys/fs/cgroup/my cg');
  });

  it("reads this process's own cgroups, v1 per controller and v2's unified one", () => {
    const v1 = parseProcessCgroups(
      ['9:name=systemd:/system.slice/cellblock.service', '4:memory:/system.slice/cellblock.service', '2:cpu,cpuacct:/system.slice/cellblock.service', '1:pids:/', '0::/system.slice/cellblock.service', ''].join('\n'),
    );
    assert.equal(v1.unified, '/system.slice/cellblock.service');
    assert.deepEqual(Object.fromEntries(v1.byController), {
      'name=systemd': '/system.slice/cellblock.service',
      memory: '/system.slice/cellblock.service',
      cpu: '/system.slice/cellblock.service',
      cpuacct: '/system.slice/cellblock.service',
      pids: '/',
    });
    const v2 = parseProcessCgroups('0::/system.slice/cellblock.service\n');
    assert.deepEqual([v2.unified, v2.byController.size], ['/system.slice/cellblock.service', 0]);
    // A path with a colon in it is the path; a line without one, or without a path, is no cgroup.
    const odd = parseProcessCgroups('0::/a:b\ngarbage\n3:cpu:\n');
    assert.deepEqual([odd.unified, odd.byController.size], ['/a:b', 0]);
  });

  it("takes a delegated v2 base two levels up when this process was born in an earlier worker's leaf", () => {
    assert.equal(delegatedV2Base('/system.slice/cellblock.service', 'cellblock', 'host-processes'), '/system.slice/cellblock.service');
    assert.equal(delegatedV2Base('/system.slice/cellblock.service/cellblock/host-processes', 'cellblock', 'host-processes'), '/system.slice/cellblock.service');
    assert.equal(delegatedV2Base('/cellblock/host-processes', 'cellblock', 'host-processes'), '/');
    assert.equal(delegatedV2Base('/', 'cellblock', 'host-processes'), '/');
    assert.equal(delegatedV2Base('/u/test/parent/host-processes', 'test/parent', 'host-processes'), '/u');
    // Only the whole pair: a leaf of that name elsewhere is an ordinary cgroup.
    assert.equal(delegatedV2Base('/u/other/host-processes', 'cellblock', 'host-processes'), '/u/other/host-processes');
  });

  it("finds a delegated cgroup's directory through what its hierarchy's mount shows, and refuses one the mount does not show", () => {
    const mountinfo = [
      mountinfoLine(30, '/sys/fs/cgroup', 'cgroup2', 'rw'),
      // A v1 hierarchy mounted from a subtree (a container's, without a cgroup namespace).
      `31 25 0:31 /docker/abc /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory`,
    ].join('\n');
    const roots = cgroupMountRoots(mountinfo);
    assert.deepEqual(Object.fromEntries(roots), { '/sys/fs/cgroup': '/', '/sys/fs/cgroup/memory': '/docker/abc' });
    assert.equal(cgroupDirUnder('/sys/fs/cgroup', '/', '/system.slice/cellblock.service'), '/sys/fs/cgroup/system.slice/cellblock.service');
    assert.equal(cgroupDirUnder('/sys/fs/cgroup', '/', '/'), '/sys/fs/cgroup', 'the root, with no trailing slash');
    assert.equal(cgroupDirUnder('/sys/fs/cgroup/memory', '/docker/abc', '/docker/abc/unit'), '/sys/fs/cgroup/memory/unit');
    assert.equal(cgroupDirUnder('/sys/fs/cgroup/memory', '/docker/abc', '/docker/abc'), '/sys/fs/cgroup/memory');
    // Outside the mounted subtree, or above this process's cgroup namespace's root.
    for (const [root, own] of [['/docker/abc', '/'], ['/docker/abc', '/docker/other'], ['/', '/../../x']]) {
      assert.throws(() => cgroupDirUnder('/sys/fs/cgroup/memory', root!, own!), (error: unknown) => error instanceof CgroupError && /is not under the hierarchy mounted at/.test(error.message));
    }
  });
});

/** Runs `body` (an ES module's code, after imports of createSandbox, busyboxRoot and
 * PROGRAMS_IN_ROOT) in a node process started in `cgroupDirs` (one per hierarchy), as a service
 * manager starts a service in the cgroup it delegates; returns the JSON objects it prints, one a
 * line, merged. `before` is shell run in that cgroup first (other processes of the service). */
function runInCgroup(cgroupDirs: string[], body: string, before = ''): Record<string, unknown> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-delegated-'));
  try {
    const script = path.join(scratch, 'inside.mts'); // .mts: an ES module outside the package
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';
import path from 'node:path';
import { createSandbox } from '${REPO}/src/sandbox/index.ts';
import { busyboxRoot, PROGRAMS_IN_ROOT } from '${REPO}/test/helpers/busybox-root.ts';
const scratch = ${JSON.stringify(scratch)};
${body}
`,
    );
    const join = cgroupDirs.map((dir) => `echo $$ > ${dir}/cgroup.procs`).join(' && ');
    // `||`, not `&&` before `before`: `join && sleep &` would run the join and the sleep in a
    // background subshell, forked before the join (so the sleep stays outside the cgroup).
    const inside = spawnSync('sh', ['-c', `${join} || exit 1; ${before} exec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(script)}`], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.equal(inside.status, 0, `in the cgroup: ${inside.stderr}`);
    const printed = inside.stdout.split('\n').filter((line) => line.startsWith('{'));
    return Object.assign({}, ...printed.map((line) => JSON.parse(line) as Record<string, unknown>)) as Record<string, unknown>;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Log lines of a service that did not refuse to start. */
const SERVING = /"msg":"(worker process started"|api listening"|worker ready"|redis not reachable yet)/;

/** `cellblock ARGS` run to its exit in the cgroup `dir`, as a service manager starts a service in
 * it; with `ownNamespace` as a container's process, in a cgroup namespace of its own whose root
 * is `dir`, on a cgroup2 mount of its own; with `supervised` as superviseWorkers forks a worker
 * (the IPC channel, and the variable naming this process as its supervisor). Killed once it
 * logs that it serves (SERVING), or past 10 minutes (the VM's emulation is slow). */
async function cellblockIn(
  dir: string,
  args: string[],
  env: Record<string, string | undefined>,
  how: { ownNamespace?: boolean; supervised?: boolean } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const command = [process.execPath, '--import', 'tsx', path.join(REPO, 'src/bin/cellblock.ts'), ...args];
  const namespace = ['unshare', '--cgroup', '--mount', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"', 'sh'];
  const inside = how.ownNamespace ? [...namespace, ...command] : command;
  const child = spawn('sh', ['-c', 'echo $$ > "$1/cgroup.procs" || exit 1; shift; exec "$@"', 'sh', dir, ...inside], {
    cwd: REPO,
    env: { ...process.env, ...env, ...(how.supervised ? { CELLBLOCK_SUPERVISOR_PID: String(process.pid) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe', ...(how.supervised ? (['ipc'] as const) : [])],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => {
    stdout += chunk;
    // Past its refusal: killed at once rather than left to run (and restart its workers).
    if (SERVING.test(stdout)) child.kill('SIGKILL');
  });
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** What runInCgroup's script does with a delegated base: a run, an OOM, where the instance was. */
const DELEGATED_RUNS = `const sandbox = createSandbox({ cgroupBase: 'delegated' });
const limits = ${JSON.stringify({ ...DEFAULT_LIMITS, memoryBytes: 64 * MiB })};
const run = (argv) => sandbox.run({ rootDir: busyboxRoot(), workDirHostPath: fs.mkdtempSync(scratch + '/w'), argv, limits });
const hello = await run(['/bin/sh', '-c', 'echo hello']);
const oom = await run([PROGRAMS_IN_ROOT + '/alloc', '256']);
const instanceMade = sandbox.cgroups.parents.every((parent) => fs.existsSync(path.join(parent, sandbox.instanceId)));`;

const systemLayout = systemCgroupLayout;
const v2Skip = skipUnlessCgroupV2('the cgroup v2 backend tests');

// Plain dirs with cgroup.procs files stand in for a hierarchy: the kill reads only those, and a
// sleep of ours is the one process listed, where a real root would list the whole machine's.
/** Why the pidfd tests cannot run here (a kernel before 5.3, or pidfd_open refused), or false. */
const pidfdSkip: string | false = (() => {
  const pidfd = native.openPidfd(process.pid);
  if (pidfd < 0) return `no pidfd here (pidfd_open: errno ${-pidfd}): the kill falls back to pids by number`;
  fs.closeSync(pidfd);
  return false;
})();
if (pidfdSkip) console.log(`SKIP pidfd tests: ${pidfdSkip}`);

describe("killing what a cgroup holds", () => {
  function sleeper() {
    const child = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    const ended = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    return { child, ended };
  }

  it("refuses a hierarchy's root (its parent dir is no cgroup) and kills nothing", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-kill-test-'));
    const { child } = sleeper();
    try {
      const root = path.join(tmp, 'hierarchy');
      fs.mkdirSync(root);
      fs.writeFileSync(path.join(root, 'cgroup.procs'), `${child.pid}\n`);
      assert.throws(() => killCgroupPids(root), (error: unknown) => error instanceof CgroupError && error.code === 'EINVAL' && error.operation === 'kill');
      assert.equal(processAlive(child.pid!), true, 'the process listed there is alive');
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('kills what a cgroup below the root lists', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-kill-test-'));
    const { child, ended } = sleeper();
    try {
      const cgroup = path.join(tmp, 'hierarchy', 'cellblock');
      fs.mkdirSync(cgroup, { recursive: true });
      fs.writeFileSync(path.join(tmp, 'hierarchy', 'cgroup.procs'), '');
      fs.writeFileSync(path.join(cgroup, 'cgroup.procs'), `${child.pid}\n`);
      killCgroupPids(cgroup);
      assert.equal(await ended, 'SIGKILL');
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  /** A plain dir standing for a cgroup below a hierarchy's root (the kill's guard wants one). */
  function fakeCgroup(tmp: string): string {
    const cgroup = path.join(tmp, 'hierarchy', 'cellblock');
    fs.mkdirSync(cgroup, { recursive: true });
    fs.writeFileSync(path.join(tmp, 'hierarchy', 'cgroup.procs'), '');
    return cgroup;
  }

  // A pid that leaves the cgroup between the two reads stands for one whose process was reaped
  // and whose number a stranger took: only the second read's pids are signalled, each through the
  // pidfd opened before it.
  it('kills only the pids a second read still lists, through their pidfds', { skip: pidfdSkip }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-kill-test-'));
    const stranger = sleeper();
    const member = sleeper();
    try {
      const reads: number[][] = [[stranger.child.pid!, member.child.pid!], [member.child.pid!]];
      const signalled: number[] = [];
      const pidfdCalls = {
        openPidfd: native.openPidfd,
        signalPidfd: (fd: number, signal: number) => (signalled.push(fd), native.signalPidfd(fd, signal)),
      };
      killPidsListedTwice(fakeCgroup(tmp), () => reads.shift() ?? [], pidfdCalls);
      assert.equal(reads.length, 0, 'the list was read twice');
      assert.equal(await member.ended, 'SIGKILL');
      assert.equal(signalled.length, 1, 'one signal, through a pidfd');
      assert.equal(processAlive(stranger.child.pid!), true, 'the pid gone from the second read was not signalled');
    } finally {
      stranger.child.kill('SIGKILL');
      member.child.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('kills by number where no pidfd can be had (ENOSYS before Linux 5.3, EPERM from a seccomp profile) or its signal is refused, but not a pid already gone (ESRCH)', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-kill-test-'));
    const [noSys, refused, signalRefused, gone] = [sleeper(), sleeper(), sleeper(), sleeper()];
    // (Without pidfds the one whose signal is refused gets none: it is killed by number all the same.)
    const { ENOSYS, EPERM, ESRCH } = os.constants.errno;
    const answers = new Map([[noSys.child.pid!, -ENOSYS], [refused.child.pid!, -EPERM], [gone.child.pid!, -ESRCH]]);
    try {
      const pids = [...answers.keys(), signalRefused.child.pid!];
      const pidfdCalls = {
        openPidfd: (pid: number) => answers.get(pid) ?? native.openPidfd(pid),
        signalPidfd: () => EPERM,
      };
      killPidsListedTwice(fakeCgroup(tmp), () => pids, pidfdCalls);
      // Bounded: one left alive fails the test rather than hang it.
      const alive = new Promise<string>((resolve) => setTimeout(() => resolve('alive after 10 s'), 10_000).unref());
      const endings = [noSys, refused, signalRefused].map(({ ended }) => Promise.race([ended, alive]));
      assert.deepEqual(await Promise.all(endings), ['SIGKILL', 'SIGKILL', 'SIGKILL']);
      assert.equal(processAlive(gone.child.pid!), true, 'ESRCH: its pid was left alone');
    } finally {
      for (const { child } of [noSys, refused, signalRefused, gone]) child.kill('SIGKILL');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("pidfds: a signal through one fails (ESRCH) once its process is reaped, and a reaped pid or 0 opens none", { skip: pidfdSkip }, async () => {
    const { child, ended } = sleeper();
    const { ESRCH, EINVAL } = os.constants.errno;
    const pidfd = native.openPidfd(child.pid!);
    try {
      assert.ok(pidfd >= 0, `pidfd_open: ${pidfd}`);
      assert.equal(native.signalPidfd(pidfd, 0), 0, 'alive: signal 0 goes through');
      child.kill('SIGKILL');
      await ended;
      assert.equal(native.signalPidfd(pidfd, os.constants.signals.SIGKILL), ESRCH);
      const reopened = native.openPidfd(child.pid!);
      if (reopened >= 0) fs.closeSync(reopened); // the pid reused already: unlikely, and no failure of ours
      else assert.equal(reopened, -ESRCH);
      assert.equal(native.openPidfd(0), -EINVAL);
    } finally {
      if (pidfd >= 0) fs.closeSync(pidfd);
      child.kill('SIGKILL');
    }
  });
});

describe('cgroup v2 backend', { skip: v2Skip }, () => {
  const f = useFixture();

  it('is the backend in use, and enforces and measures memory, CPU and pids', async () => {
    assert.equal(f.sandbox.cgroups.version, 'v2');
    // Every program's child is cloned straight into its cgroup (clone3 CLONE_INTO_CGROUP, on
    // x86_64; elsewhere it joins through cgroup.procs, as on a kernel before 5.7).
    const joinsBefore = native.joinCounts();
    assert.equal(f.sandbox.cgroups.hostProcessesMovedTo, undefined, 'nothing moved outside a container');
    const oom = await f.run([program('alloc'), '256'], { limits: { memoryBytes: 64 * MiB } });
    assert.equal(oom.verdict, 'memory_limit');
    const alloc = await f.run([program('alloc'), '64'], { limits: { memoryBytes: 256 * MiB } });
    assert.ok(alloc.metrics.peakMemoryBytes >= 64 * MiB && alloc.metrics.peakMemoryBytes <= 64 * MiB * 1.1 + 2 * MiB);
    const spin = await f.run([program('spin'), '500']);
    // 1% below: spin's own clock also counts its setup before the run (see limits.test.ts).
    assert.ok(spin.metrics.cpuTimeMs >= 495 && spin.metrics.cpuTimeMs <= 550, `cpu ${spin.metrics.cpuTimeMs}`);
    const loop = await f.run([program('spin')], { limits: { cpuTimeMs: 300 } });
    assert.equal(loop.verdict, 'cpu_time_limit');
    const forks = await f.run(['/bin/sh', '-c', 'for i in 1 2 3 4 5 6; do sleep 1 & done; wait'], { limits: { pids: 3 } });
    assert.match(text(forks.stderr), /can't fork/);
    const joins = native.joinCounts();
    if (process.arch === 'x64') {
      assert.deepEqual({ clonedInto: joins.clonedInto - joinsBefore.clonedInto, joined: joins.joined - joinsBefore.joined }, { clonedInto: 5, joined: 0 });
    }
    const swapMax = path.join('/sys/fs/cgroup', 'cellblock', f.sandbox.instanceId);
    assert.ok(fs.existsSync(swapMax), 'instance subtree exists under /sys/fs/cgroup/cellblock');
  });

  it("works in a container's own cgroup namespace, whose root cgroup holds the container's processes", async () => {
    // As Docker (its default on v2 hosts) and Kubernetes run a container: all its processes in
    // one cgroup, which is the root of the cgroup2 hierarchy mounted in it. The controllers
    // cannot be enabled for children of a cgroup that has processes; the backend moves them all
    // (here a shell, a sleeper standing for the container's init, and node) to a leaf of its own.
    const mountPoint = systemLayout?.version === 'v2' ? systemLayout.mountPoint : '/sys/fs/cgroup';
    const container = path.join(mountPoint, 'cellblock', `test-container-${process.pid}`);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-cgns-'));
    const script = path.join(scratch, 'inside.mts'); // .mts: an ES module outside the package
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';
import { createSandbox } from '${REPO}/src/sandbox/index.ts';
import { busyboxRoot, PROGRAMS_IN_ROOT } from '${REPO}/test/helpers/busybox-root.ts';
const limits = ${JSON.stringify({ ...DEFAULT_LIMITS, memoryBytes: 64 * MiB })};
const sandbox = createSandbox();
const run = (argv) => sandbox.run({ rootDir: busyboxRoot(), workDirHostPath: fs.mkdtempSync('${scratch}/w'), argv, limits });
const hello = await run(['/bin/sh', '-c', 'echo hello']);
const oom = await run(['${PROGRAMS_IN_ROOT}/alloc', '256']);
const read = (file) => fs.readFileSync(file, 'utf8').trim().split('\\n').filter(Boolean);
console.log(JSON.stringify({
  hello: [hello.verdict, hello.stdout.toString()], oom: oom.verdict, cgroups: sandbox.cgroups,
  self: fs.readFileSync('/proc/self/cgroup', 'utf8').trim(),
  rootProcs: read('/sys/fs/cgroup/cgroup.procs'), leafProcs: read('/sys/fs/cgroup/cellblock/host-processes/cgroup.procs'),
}));
await sandbox.close();
`,
    );
    fs.mkdirSync(container);
    try {
      const inContainer = [
        'umount /sys/fs/cgroup',
        'mount -t cgroup2 cgroup2 /sys/fs/cgroup',
        'sleep 600 & sleeper=$!',
        `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(script)}`,
        'status=$?',
        'kill $sleeper',
        'exit $status',
      ].join('\n');
      const inside = spawnSync(
        'sh',
        ['-c', `echo $$ > ${container}/cgroup.procs && exec unshare --cgroup --mount --propagation private sh -c "$0"`, inContainer],
        { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      assert.equal(inside.status, 0, `in the container: ${inside.stderr}`);
      const seen = JSON.parse(inside.stdout.trim().split('\n').pop()!) as {
        hello: [string, string];
        oom: string;
        cgroups: { version: string; hostProcessesMovedTo?: string };
        self: string;
        rootProcs: string[];
        leafProcs: string[];
      };
      assert.deepEqual(seen.hello, ['ok', 'hello\n']);
      assert.equal(seen.oom, 'memory_limit');
      assert.deepEqual(seen.cgroups, { version: 'v2', parents: ['/sys/fs/cgroup/cellblock'], peakMemorySource: 'memory.peak', hostProcessesMovedTo: '/sys/fs/cgroup/cellblock/host-processes' });
      assert.equal(seen.self, '0::/cellblock/host-processes', 'node itself was moved to the leaf');
      assert.deepEqual(seen.rootProcs, [], "nothing is left in the namespace's root cgroup");
      assert.ok(seen.leafProcs.length >= 3, `shell, sleeper and node in the leaf: ${seen.leafProcs.join(' ')}`);
      // Its close put the container's processes back and undid the rest: the container's cgroup
      // takes a process again (`docker exec`), which the kernel refuses while it enables controllers.
      assert.ok(!fs.existsSync(path.join(container, 'cellblock')), 'cellblock/ and its leaf are gone');
      assert.equal(fs.readFileSync(path.join(container, 'cgroup.subtree_control'), 'utf8').trim(), '', "the container's subtree_control is empty again");
    } finally {
      // Whatever is left inside (nothing, unless the test failed midway) dies with the cgroup.
      fs.writeFileSync(path.join(container, 'cgroup.kill'), '1');
      await until(() => fs.readFileSync(path.join(container, 'cgroup.events'), 'utf8').includes('populated 0'), 5000, 10, 'container cgroup empty');
      for (const dir of [path.join(container, 'cellblock', 'host-processes'), path.join(container, 'cellblock'), container]) {
        if (fs.existsSync(dir)) fs.rmdirSync(dir);
      }
      removeCgroupDirIfEmpty(path.dirname(container));
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("ends a run at its memory limit whole (memory.oom.group): the shell around the OOM-killed program dies with it", async () => {
    const r = await f.run(['/bin/sh', '-c', `${program('alloc')} 256; echo survived`], { limits: { memoryBytes: 64 * MiB } });
    assert.equal(r.verdict, 'memory_limit');
    assert.equal(text(r.stdout), '', 'the shell was killed with alloc');
  });

  it('goes under the cgroup it was started in with CELLBLOCK_CGROUP_BASE=delegated, moving its processes to a leaf, and leaves that cgroup as it was', async () => {
    // As systemd starts a service with Delegate=yes: every process of the service in the unit's
    // cgroup (here a sleeper standing for the service's other processes, and node), which has
    // the controllers (its parent, our own cellblock/, enabled them: the fixture's instance).
    const mountPoint = systemLayout?.version === 'v2' ? systemLayout.mountPoint : '/sys/fs/cgroup';
    const unit = path.join(mountPoint, 'cellblock', `test-unit-${process.pid}`);
    const unitRelative = `/cellblock/test-unit-${process.pid}`;
    fs.mkdirSync(unit);
    const subtreeControl = () => fs.readFileSync(path.join(unit, 'cgroup.subtree_control'), 'utf8');
    const controlBefore = subtreeControl();
    try {
      const seen = runInCgroup(
        [unit],
        `${DELEGATED_RUNS}
const read = (file) => fs.readFileSync(file, 'utf8').trim().split('\\n').filter(Boolean);
const unitProcs = read('${unit}/cgroup.procs');
// A worker its supervisor restarts is born in the leaf: its base is still the unit's cgroup.
const { execFileSync } = await import('node:child_process');
const restarted = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '-e',
  "const { createSandbox } = await import('${REPO}/src/sandbox/index.ts'); const s = createSandbox({ cgroupBase: 'delegated' }); console.log(JSON.stringify(s.cgroups.parents)); await s.close();"],
  { cwd: '${REPO}', encoding: 'utf8' }).trim().split('\\n').pop());
// Closed while this one's instance is there: it leaves the leaf and the controllers to this one.
const leftForThisOne = fs.existsSync(sandbox.cgroups.hostProcessesMovedTo) && read('${unit}/cgroup.subtree_control').length > 0;
console.log(JSON.stringify({ hello: [hello.verdict, hello.stdout.toString()], oom: oom.verdict, instanceMade, cgroups: sandbox.cgroups,
  self: fs.readFileSync('/proc/self/cgroup', 'utf8').trim(), unitProcs, leafProcs: read(sandbox.cgroups.hostProcessesMovedTo + '/cgroup.procs'), restarted, leftForThisOne }));
await sandbox.close();
// The last instance closed: the processes are back in the unit's cgroup, where its manager put them.
console.log(JSON.stringify({ selfAfterClose: fs.readFileSync('/proc/self/cgroup', 'utf8').trim() }));`,
        'sleep 600 > /dev/null 2>&1 & echo "{\\"sleeper\\": $!}";',
      );
      assert.deepEqual(seen.hello, ['ok', 'hello\n']);
      assert.equal(seen.oom, 'memory_limit');
      assert.equal(seen.instanceMade, true);
      assert.deepEqual(seen.cgroups, {
        version: 'v2',
        parents: [`${unit}/cellblock`],
        peakMemorySource: 'memory.peak',
        hostProcessesMovedTo: `${unit}/cellblock/host-processes`,
        delegation: { base: unit }, // no mark: the worker warns that nothing confirms it
      });
      assert.equal(seen.self, `0::${unitRelative}/cellblock/host-processes`, 'node itself was moved to the leaf');
      assert.deepEqual(seen.unitProcs, [], "nothing is left in the unit's own cgroup");
      assert.ok((seen.leafProcs as string[]).includes(String(seen.sleeper)), `the sleeper (${seen.sleeper}) in the leaf, with node: ${(seen.leafProcs as string[]).join(' ')}`);
      assert.deepEqual(seen.restarted, [`${unit}/cellblock`]);
      assert.equal(seen.leftForThisOne, true, 'a close with another instance there leaves the leaf and the controllers');
      // At the last close: nothing of cellblock's left in the unit's cgroup, whose manager can
      // put a process in it again (the kernel refuses that while it enables controllers).
      assert.equal(seen.selfAfterClose, `0::${unitRelative}`, 'node was moved back to the unit');
      assert.ok(!fs.existsSync(path.join(unit, 'cellblock')), 'cellblock/ and its leaf are gone');
      assert.equal(subtreeControl(), controlBefore, "the unit's subtree_control is as before");
      assert.ok(fs.readFileSync(path.join(unit, 'cgroup.procs'), 'utf8').split('\n').includes(String(seen.sleeper)), 'the sleeper is back in the unit');
      const joiner = spawnSync('sh', ['-c', `echo $$ > ${unit}/cgroup.procs`]);
      assert.equal(joiner.status, 0, `a process can join the unit again: ${joiner.stderr}`);
    } finally {
      await removeTestCgroup(unit);
    }
  });

  it('takes the marked parent of its cgroup as the base (systemd DelegateSubgroup=), with nothing to move', async () => {
    // systemd 251+ marks a cgroup it delegates with trusted.delegate=1; with DelegateSubgroup=
    // it starts the service in a subgroup of it, which /proc/self/cgroup then names.
    const mountPoint = systemLayout?.version === 'v2' ? systemLayout.mountPoint : '/sys/fs/cgroup';
    const unit = path.join(mountPoint, 'cellblock', `test-marked-${process.pid}`);
    const subgroup = path.join(unit, 'supervisor');
    fs.mkdirSync(subgroup, { recursive: true });
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import os, sys; os.setxattr(sys.argv[1], "trusted.delegate", b"1")', unit]);
      const seen = runInCgroup(
        [subgroup],
        `${DELEGATED_RUNS}
console.log(JSON.stringify({ hello: [hello.verdict, hello.stdout.toString()], oom: oom.verdict, instanceMade, cgroups: sandbox.cgroups,
  self: fs.readFileSync('/proc/self/cgroup', 'utf8').trim() }));
await sandbox.close();`,
      );
      assert.deepEqual(seen.hello, ['ok', 'hello\n']);
      assert.equal(seen.oom, 'memory_limit');
      assert.equal(seen.instanceMade, true);
      assert.deepEqual(seen.cgroups, { version: 'v2', parents: [`${unit}/cellblock`], peakMemorySource: 'memory.peak', delegation: { base: unit, mark: 'trusted.delegate' } });
      assert.equal(seen.self, `0::/cellblock/test-marked-${process.pid}/supervisor`, 'left in its subgroup: the unit itself held no process');
    } finally {
      await removeTestCgroup(unit);
    }
  });

  it('refuses a delegated cgroup that lacks a controller, naming the ones it lacks', async () => {
    // The unit's parent enables none for it: DelegateControllers= without cpu, memory and pids.
    const mountPoint = systemLayout?.version === 'v2' ? systemLayout.mountPoint : '/sys/fs/cgroup';
    const slice = path.join(mountPoint, 'cellblock', `test-slice-${process.pid}`);
    const unit = path.join(slice, 'unit');
    fs.mkdirSync(unit, { recursive: true });
    try {
      const seen = runInCgroup(
        [unit],
        `let message = 'created';
try { createSandbox({ cgroupBase: 'delegated' }); } catch (error) { message = error.message; }
console.log(JSON.stringify({ message }));`,
      );
      assert.match(String(seen.message), /lacks cpu, memory, pids \(its cgroup.controllers: none\): its manager did not delegate them \(systemd: Delegate=yes/);
    } finally {
      await removeTestCgroup(slice);
    }
  });

  it('a cgroup without memory: `start` and `worker` refuse in one line before anything serves, and a worker that fails there says so in one line', async () => {
    // The unit's parent gives it cpu and pids alone (systemd's Delegate=cpu pids), and a
    // container's own cgroup namespace made there has the same. Four at once: each node start
    // under the VM's emulation takes a while.
    const mountPoint = systemLayout?.version === 'v2' ? systemLayout.mountPoint : '/sys/fs/cgroup';
    const slice = path.join(mountPoint, 'cellblock', `test-no-memory-${process.pid}`);
    const unit = path.join(slice, 'unit');
    fs.mkdirSync(unit, { recursive: true });
    fs.writeFileSync(path.join(slice, 'cgroup.subtree_control'), '+cpu +pids');
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-no-memory-'));
    try {
      const env = {
        CELLBLOCK_REDIS_URL: 'redis://127.0.0.1:1',
        CELLBLOCK_PORT: '0',
        CELLBLOCK_REDIS_DATA_DIR: path.join(scratch, 'redis'),
        CELLBLOCK_POOL_STATE_DIR: path.join(scratch, 'pool'),
        CELLBLOCK_LOG_LEVEL: 'info',
      };
      const delegated = { ...env, CELLBLOCK_CGROUP_BASE: 'delegated' };
      const [start, supervisedDelegated, worker, supervisedInNamespace] = await Promise.all([
        cellblockIn(unit, ['start'], { ...delegated, CELLBLOCK_REDIS_URL: undefined }),
        cellblockIn(unit, ['worker', '--single'], delegated, { supervised: true }),
        cellblockIn(unit, ['worker'], env, { ownNamespace: true }),
        cellblockIn(unit, ['worker', '--single'], env, { ownNamespace: true, supervised: true }),
      ]);
      const lacksMemory = `cellblock: cgroup v2: the cgroup cellblock was started in (${unit}, CELLBLOCK_CGROUP_BASE=delegated) lacks memory (its cgroup.controllers: cpu pids): its manager did not delegate them (systemd: Delegate=yes, or Delegate=cpu memory pids)\n`;
      // The preflight, before the private Redis and the API: no worker forked, nothing served.
      assert.deepEqual([start.code, start.stderr], [1, lacksMemory], start.stdout);
      for (const msg of ['private redis-server started', 'worker process started', 'api listening']) assert.ok(!start.stdout.includes(`"msg":"${msg}"`), `${msg}: ${start.stdout}`);
      // A worker its supervisor forked skips the preflight (the supervisor ran it): its sandbox's own refusal, the same line.
      assert.deepEqual([supervisedDelegated.code, supervisedDelegated.stderr], [1, lacksMemory]);
      const noHierarchy = /^cellblock: no usable cgroup hierarchy: cgroup v2 at \/sys\/fs\/cgroup lacks memory \(its cgroup.controllers: cpu pids\), and no cgroup v1 hierarchy is mounted\. [^\n]*did not delegate the controller to it\n$/;
      for (const [name, run] of [['worker', worker], ['supervised worker', supervisedInNamespace]] as const) {
        assert.equal(run.code, 1, `${name}: ${run.stderr}`);
        assert.match(run.stderr, noHierarchy, name);
      }
      assert.ok(!worker.stdout.includes('"msg":"worker ready"'));
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
      await removeTestCgroup(slice);
    }
  });
});

describe('cgroup v1 backend', { skip: skip || (systemLayout?.version !== 'v1' && "this host's hierarchy is not v1") }, () => {
  const f = useFixture();

  it("joins the program's child through each hierarchy's tasks file (v1 has no CLONE_INTO_CGROUP)", async () => {
    const before = native.joinCounts();
    const r = await f.run([program('alloc'), '256'], { limits: { memoryBytes: 64 * MiB } });
    assert.equal(r.verdict, 'memory_limit', 'the child is in the limited cgroup');
    const after = native.joinCounts();
    assert.deepEqual({ clonedInto: after.clonedInto - before.clonedInto, joined: after.joined - before.joined }, { clonedInto: 0, joined: 1 });
  });

  // The v2 backend's clone3 (a raw trampoline, clone_vm.cc), also where the host is v1: on the
  // hybrid layout's unified hierarchy, which has no controllers but takes processes.
  const unified = '/sys/fs/cgroup/unified';
  it("clones the program's child straight into a cgroup v2 directory given it (clone3 CLONE_INTO_CGROUP, x86_64)", { skip: (process.arch !== 'x64' && 'clone3 is used on x86_64 only') || (!fs.existsSync(path.join(unified, 'cgroup.controllers')) && 'no unified hierarchy beside v1 here') }, async () => {
    const dir = path.join(unified, `cellblock-test-clone-into-${process.pid}`);
    fs.mkdirSync(dir);
    const { scratch, workDir, writtenPath } = scratchWithWorkDir('');
    try {
      const before = native.joinCounts();
      await runEngineAlone(workDir, 'echo ran > /box/written', { cloneIntoPath: dir });
      const after = native.joinCounts();
      assert.equal(fs.readFileSync(writtenPath, 'utf8'), 'ran\n');
      assert.deepEqual({ clonedInto: after.clonedInto - before.clonedInto, joined: after.joined - before.joined }, { clonedInto: 1, joined: 0 });
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
      await removeCgroupTree(dir, killCgroupPids);
    }
  });

  it('has no memory.oom.group: the shell around an OOM-killed program runs on (the verdict is memory_limit all the same)', async () => {
    const r = await f.run(['/bin/sh', '-c', `${program('alloc')} 256; echo survived`], { limits: { memoryBytes: 64 * MiB } });
    assert.equal(r.verdict, 'memory_limit');
    assert.equal(text(r.stdout), 'survived\n');
  });

  /** A unit's cgroup in every controller's hierarchy and in systemd's own (name=systemd), as
   * systemd's Delegate=yes makes one on a v1 host; `mark`: the trusted.delegate systemd 251+ sets
   * on the one in its own hierarchy. */
  function v1Unit(name: string, mark: boolean): { units: string[]; systemdUnit: string | undefined; parents: Record<string, string> } {
    const layout = systemLayout?.version === 'v1' ? systemLayout : undefined;
    const systemdMount = parseCgroupMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8')).find((mount) => mount.superOptions.includes('name=systemd'));
    const unitOf = (mount: string) => path.join(mount, 'cellblock', `${name}-${process.pid}`);
    const systemdUnit = systemdMount ? unitOf(systemdMount.mountPoint) : undefined;
    const units = [...new Set(Object.values(layout?.mountPoints ?? {}).map(unitOf)), ...(systemdUnit ? [systemdUnit] : [])];
    for (const unit of units) fs.mkdirSync(unit, { recursive: true });
    if (mark && systemdUnit) execFileSync('/usr/bin/python3', ['-c', 'import os, sys; os.setxattr(sys.argv[1], "trusted.delegate", b"1")', systemdUnit]);
    const parents = Object.fromEntries(Object.entries(layout?.mountPoints ?? {}).map(([controller, mount]) => [controller, path.join(unitOf(mount), 'cellblock')]));
    return { units, systemdUnit, parents };
  }

  it('goes under the cgroup it was started in, in each hierarchy, with CELLBLOCK_CGROUP_BASE=delegated; unmarked, each controller\'s parent is told', async () => {
    const { units, systemdUnit, parents } = v1Unit('test-unit', false);
    try {
      const seen = runInCgroup(
        units,
        `${DELEGATED_RUNS}
console.log(JSON.stringify({ hello: [hello.verdict, hello.stdout.toString()], oom: oom.verdict, instanceMade, cgroups: sandbox.cgroups }));
await sandbox.close();`,
      );
      assert.deepEqual(seen.hello, ['ok', 'hello\n']);
      assert.equal(seen.oom, 'memory_limit', "the run's memory limit holds under the unit");
      assert.equal(seen.instanceMade, true);
      const cgroups = seen.cgroups as { parents: string[]; hostProcessesMovedTo?: string; delegation?: unknown };
      assert.deepEqual(cgroups.parents.toSorted(), [...new Set(Object.values(parents))].toSorted());
      assert.equal(cgroups.hostProcessesMovedTo, undefined, 'v1 moves nothing');
      // No mark: the worker warns, naming these (worker.ts).
      assert.deepEqual(cgroups.delegation, { base: systemdUnit, parents }, JSON.stringify(cgroups));
      for (const unit of units) assert.ok(!fs.existsSync(path.join(unit, 'cellblock')), `the parent under ${unit} went with the instance`);
    } finally {
      for (const unit of units) await removeTestCgroup(unit);
    }
  });

  it("finds systemd's mark on the unit's cgroup in its own hierarchy (name=systemd)", { skip: !fs.existsSync('/sys/fs/cgroup/systemd') && 'no name=systemd hierarchy mounted' }, async () => {
    const { units, systemdUnit, parents } = v1Unit('test-marked', true);
    try {
      const seen = runInCgroup(units, `const sandbox = createSandbox({ cgroupBase: 'delegated' });
console.log(JSON.stringify({ cgroups: sandbox.cgroups }));
await sandbox.close();`);
      assert.deepEqual((seen.cgroups as { delegation?: unknown }).delegation, { base: systemdUnit, mark: 'trusted.delegate', parents });
    } finally {
      for (const unit of units) await removeTestCgroup(unit);
    }
  });
});

describe("the preflight's cgroup check tries what a worker's start does", { skip }, () => {
  it('refuses a read-only cgroup mount in one line naming the path and the errno; a writable one passes, leaving nothing behind', () => {
    // A parent of the test's own, not `cellblock/`: the workers of other tests use that one.
    const parentName = `cellblock-test-ro-${process.pid}`;
    const parents = createCgroupBackend(parentName).parentPaths;
    // Missing: made for the probe, and removed with it.
    checkSandboxCgroups({ cgroupParent: parentName });
    assert.deepEqual(parents.filter((parent) => fs.existsSync(parent)), []);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-ro-cgroup-'));
    for (const parent of parents) fs.mkdirSync(parent);
    try {
      checkSandboxCgroups({ cgroupParent: parentName });
      assert.deepEqual(parents.flatMap((parent) => listSubdirs(parent)), [], 'the probe removed');
      const script = path.join(scratch, 'check.mts');
      fs.writeFileSync(
        script,
        `import { checkSandboxCgroups } from '${REPO}/src/sandbox/index.ts';
try {
  checkSandboxCgroups({ cgroupParent: ${JSON.stringify(parentName)} });
  console.log(JSON.stringify({ passed: true }));
} catch (error) {
  console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message }));
}
`,
      );
      // A mount namespace of its own, where each parent is bind-mounted read-only onto itself: as
      // a container that mounts the cgroup tree read-only. The host's mounts are left as they are.
      const inside = spawnSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'script=$1; shift; for dir; do mount --bind "$dir" "$dir" && mount -o remount,bind,ro "$dir" || exit 1; done; exec "$0" --import tsx "$script"',
          process.execPath,
          script,
          ...parents,
        ],
        { cwd: REPO, encoding: 'utf8' },
      );
      assert.equal(inside.status, 0, inside.stderr);
      const seen = JSON.parse(inside.stdout.trim().split('\n').at(-1)!) as { name?: string; code?: string; message?: string };
      assert.equal(seen.name, 'SandboxError', inside.stdout);
      assert.equal(seen.code, 'EROFS');
      assert.doesNotMatch(seen.message!, /\n/);
      assert.ok(seen.message!.startsWith(`cannot make a cgroup: mkdir ${parents[0]}/preflight:`), seen.message);
      assert.match(seen.message!, /failed with EROFS: the cgroup filesystem is mounted read-only here/);
      assert.deepEqual(parents.flatMap((parent) => listSubdirs(parent)), [], 'nothing made on the host');
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
      for (const parent of parents) removeCgroupDirIfEmpty(parent);
    }
  });
});

describe("a cgroup's mkdir on a read-only mount", () => {
  it('says EROFS, naming the first dir it could not make, with what to do; not the ENOENT of a recursive mkdir', { skip: process.getuid?.() !== 0 && 'needs root (a mount namespace)' }, () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-ro-mkdir-'));
    try {
      const script = path.join(scratch, 'make.mts');
      fs.writeFileSync(
        script,
        `import { makeCgroupDir } from '${REPO}/src/sandbox/cgroups/cgroupfs.ts';
try {
  makeCgroupDir(process.argv[2] + '/a/b');
  console.log(JSON.stringify({ made: true }));
} catch (error) {
  console.log(JSON.stringify({ name: error.name, code: error.code, path: error.path, message: error.message }));
}
`,
      );
      const readOnly = path.join(scratch, 'ro');
      fs.mkdirSync(readOnly);
      // A mount namespace of its own, where the dir is bind-mounted read-only onto itself.
      const inside = spawnSync(
        'unshare',
        ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$2" "$2" && mount -o remount,bind,ro "$2" && exec "$0" --import tsx "$1" "$2"', process.execPath, script, readOnly],
        { cwd: REPO, encoding: 'utf8' },
      );
      assert.equal(inside.status, 0, inside.stderr);
      const seen = JSON.parse(inside.stdout.trim().split('\n').at(-1)!) as { name?: string; code?: string; path?: string; message?: string };
      assert.deepEqual({ name: seen.name, code: seen.code, path: seen.path }, { name: 'CgroupError', code: 'EROFS', path: path.join(readOnly, 'a') }, inside.stdout);
      assert.match(seen.message!, /^cannot make a cgroup: mkdir \S+\/a failed with EROFS: the cgroup filesystem is mounted read-only here/);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('sandbox instances and cleanupStale', { skip }, () => {
  it('removes the subtree of a dead instance, never a live one', async () => {
    const live = createSandbox({ instanceId: `live-${process.pid}` });
    const deadId = `dead-${process.pid}`;
    try {
      // A process that creates an instance and dies without closing it.
      execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '-e',
          `import('${REPO}/src/sandbox/index.ts').then((m) => { m.createSandbox({ instanceId: '${deadId}' }); process.exit(0); })`,
        ],
        { cwd: REPO, stdio: 'pipe' },
      );
      const janitor = createSandbox();
      try {
        const removed = await janitor.cleanupStale();
        assert.ok(removed.includes(deadId), `removed ${JSON.stringify(removed)}`);
        assert.ok(!removed.includes(live.instanceId));
        assert.ok(!removed.includes(janitor.instanceId));
        const again = await janitor.cleanupStale();
        assert.ok(!again.includes(deadId));
        assert.throws(() => createSandbox({ instanceId: live.instanceId }), /in use by a live process/);
      } finally {
        await janitor.close();
      }
    } finally {
      await live.close();
    }
    assert.deepEqual(
      fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(deadId),
      false,
    );
  });
});

/** One run of the engine itself, without a cgroup, as `sh -c script` in the busybox root with
 * `workDir` as /box; `accountingFds` and `memorySamplePath` stand for a run cgroup's files,
 * `cloneIntoPath` for its v2 directory; the time limits as given, unchecked (5 s, 10 s). */
async function runEngineAlone(
  workDir: string,
  script: string,
  files: { accountingFds?: number[]; memorySamplePath?: string; cloneIntoPath?: string; cpuTimeMs?: number; wallTimeMs?: number },
): Promise<NativeExit> {
  const events: Array<{ kind: string; exit?: NativeExit }> = [];
  let ready!: () => void;
  let gone!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const isGone = new Promise<void>((resolve) => (gone = resolve));
  const handle = native.createContainer(
    { rootDir: busyboxRoot(), workDirHostPath: workDir, workDir: '/box', hostname: 'cellblock', tmpBytes: 16 * MiB,
      cgroupJoinPaths: [], cgroupCloneIntoPath: files.cloneIntoPath ?? '', cpuUsagePath: '', cpuUsageScaleNs: 1, memorySamplePath: files.memorySamplePath ?? '',
      cpuWeightPath: '', backgroundCpuWeight: 0, tcpRmem: containerTcpRmem() },
    (kind, exit) => {
      events.push({ kind, exit });
      if (kind === 'ready') ready();
      if (kind === 'gone') gone();
    },
  );
  await isReady;
  handle.start({
    argv: ['/bin/sh', '-c', script], env: ['PATH=/bin'], searchPath: '/bin', cwd: '/box', stdin: Buffer.alloc(0),
    uid: 60000, gid: 60000, cpuTimeMs: files.cpuTimeMs ?? 5000, wallTimeMs: files.wallTimeMs ?? 10000, outputBytes: MiB, fileSizeBytes: MiB, openFiles: 64,
    stackBytes: 8 * MiB, tmpBytes: 16 * MiB, cpuRlimitSeconds: 6, pollIntervalMs: 5, backgroundAfterCpuMs: 0, somaxconn: 4096, stderrToStdout: false, pids: 0,
    accountingFds: files.accountingFds ?? [],
  });
  await until(() => events.some((e) => e.kind === 'exit'), 10_000, 5, 'the run ended');
  handle.cancel();
  await isGone;
  return events.find((e) => e.kind === 'exit')!.exit!;
}

/** A scratch dir with a work dir the sandbox user owns, holding `written` (its text given). */
function scratchWithWorkDir(written: string): { scratch: string; workDir: string; writtenPath: string } {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cellblock-accounting-'));
  const workDir = path.join(scratch, 'work');
  fs.mkdirSync(workDir);
  fs.chownSync(workDir, 60000, 60000);
  const writtenPath = path.join(workDir, 'written');
  fs.writeFileSync(writtenPath, written);
  fs.chownSync(writtenPath, 60000, 60000);
  return { scratch, workDir, writtenPath };
}

describe("the run's accounting, read by the engine at its end", { skip }, () => {
  it("hands back the texts of the descriptors it was given, in their order, read from offset 0 once the run's processes are dead, and leaves them open", async () => {
    // The first file is written by the run itself, so its text must be the one after the run,
    // and the descriptor's offset (moved here) must not matter.
    const { scratch, workDir, writtenPath } = scratchWithWorkDir('before\n');
    const fixed = path.join(scratch, 'fixed');
    fs.writeFileSync(fixed, 'usage_usec 1234\noom_kill 0\n');
    const fds = [fs.openSync(writtenPath, 'r'), fs.openSync(fixed, 'r')];
    fs.readSync(fds[1]!, Buffer.alloc(4), 0, 4, null);
    try {
      const exit = await runEngineAlone(workDir, 'echo after > /box/written', { accountingFds: fds });
      assert.deepEqual(exit.accountingTexts, ['after\n', 'usage_usec 1234\noom_kill 0\n']);
      assert.equal(exit.sampledPeakMemoryBytes, 0, 'no sample file: no samples');
      for (const fd of fds) assert.ok(fs.fstatSync(fd).isFile(), 'the descriptors are still open: the caller owns them');
    } finally {
      for (const fd of fds) fs.closeSync(fd);
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('samples the memory file at its polls during the run and hands back the greatest reading (v2 before 5.19 has no memory.peak)', async () => {
    // The run itself writes the file init samples: 7 MiB for a second, then a little, as a
    // program's memory.current rises and falls; the greatest reading is the peak.
    const { scratch, workDir, writtenPath } = scratchWithWorkDir('4096\n');
    try {
      const exit = await runEngineAlone(workDir, 'echo 7340032 > /box/written; sleep 1; echo 8192 > /box/written', { memorySamplePath: writtenPath });
      assert.equal(exit.sampledPeakMemoryBytes, 7340032);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('time limits given straight to the addon', { skip }, () => {
  it('takes one past what 64 bits of nanoseconds hold as no limit at all, not as one already passed', async () => {
    // 1e13 ms is 1e19 ns, past 2^63: cast unchecked it was INT64_MIN, and the run was killed at
    // once for its wall time. The engine's spec check refuses such limits (spec.test.ts).
    const { scratch, workDir, writtenPath } = scratchWithWorkDir('');
    try {
      const exit = await runEngineAlone(workDir, 'echo ran > /box/written', { cpuTimeMs: 1e13, wallTimeMs: 1e13 });
      assert.deepEqual([exit.status, exit.statusValue, exit.killedForWall, exit.killedForCpu], ['exited', 0, false, false]);
      assert.equal(fs.readFileSync(writtenPath, 'utf8'), 'ran\n');
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });
});
