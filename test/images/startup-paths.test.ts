// scripts/startup-paths.ts: reading strace's output, and the repository's start-up path lists
// against a trace of each runtime's hello world in its built image (a list that no longer matches
// its image fails here, with the command that rewrites it).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it, test } from 'node:test';
import { promisify } from 'node:util';
import { buildImages } from '../../src/images/builder.js';
import { dataDirFromEnv, defaultDefinitionsDir, defaultRuntimesDir, repoRoot } from '../../src/images/paths.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { openImageStore } from '../../src/images/store.js';
import { variantOf } from '../../src/images/variants.js';
import { ENGINE_MOUNT_POINTS } from '../../src/pool/index.js';
import { diffStage, pathsFromTrace, splitArgs, traceStartupPaths } from '../../scripts/startup-paths.js';
import { scratchDir, whyNoLayerBuilds } from './helpers.js';

const execFileAsync = promisify(execFile);
const EXCLUDED = ['/proc', '/dev', '/tmp', '/box', '/sys'];

test("strace's arguments: lone strings decoded, arrays and structs kept whole", () => {
  assert.deepEqual(splitArgs('AT_FDCWD, "/a\\"b\\\\c\\x41\\101", O_RDONLY) = 3'), [{ raw: 'AT_FDCWD' }, { string: '/a"b\\cAA' }, { raw: 'O_RDONLY' }]);
  assert.deepEqual(splitArgs('"/bin/x", ["/bin/x", "a,b"], 0x7ff /* 3 vars */) = 0'), [{ string: '/bin/x' }, { raw: '["/bin/x", "a,b"]' }, { raw: '0x7ff /* 3 vars */' }]);
  assert.deepEqual(splitArgs('3, "", {st_mode=S_IFREG|0644, st_size=1, ...}, AT_EMPTY_PATH) = 0'), [{ raw: '3' }, { string: '' }, { raw: '{st_mode=S_IFREG|0644, st_size=1, ...}' }, { raw: 'AT_EMPTY_PATH' }]);
  assert.deepEqual(splitArgs('AT_FDCWD, "/x", O_RDONLY <unfinished ...>'), [{ raw: 'AT_FDCWD' }, { string: '/x' }, { raw: 'O_RDONLY' }]);
});

test("a stage's paths: from its exec on, every pid, normalised, less the container's own mounts", () => {
  const trace = [
    '100 execve("/bin/sh", ["/bin/sh", "-c", "cd \\"$1\\" && exec \\"$@\\""], 0x7ffd /* 3 vars */) = 0',
    '100 openat(AT_FDCWD, "/etc/launcher-only", O_RDONLY|O_CLOEXEC) = 3',
    '100 execve("/usr/bin/prog", ["/usr/bin/prog", "main.x"], 0x55 /* 3 vars */) = -1 ENOENT (No such file or directory)',
    '100 openat(AT_FDCWD, "/etc/still-the-launcher", O_RDONLY) = 3',
    '100 execve("/usr/bin/prog", ["/usr/bin/prog", "main.x"], 0x55 /* 3 vars */) = 0',
    '100 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3',
    '100 newfstatat(3, "", {st_mode=S_IFREG|0644, st_size=7187, ...}, AT_EMPTY_PATH) = 0',
    '100 openat(AT_FDCWD, "/usr/lib/gcc/x86_64-linux-gnu/12/../../../../lib/crt1.o", O_RDONLY <unfinished ...>',
    '101 access("/usr/lib/with\\"quote", R_OK) = -1 ENOENT (No such file or directory)',
    '100 <... openat resumed>) = 4',
    '101 readlink("/proc/self/exe", "/usr/bin/prog", 4096) = 13',
    '101 openat(AT_FDCWD, "main.x", O_RDONLY) = 5',
    '101 openat(5, "relative", O_RDONLY) = -1 ENOENT (No such file or directory)',
    '101 newfstatat(AT_FDCWD, "/tmp/cc1.s", 0x7ffd, 0) = 0',
    '101 statfs("/sys/fs/cgroup", 0x7ffd) = -1 ENOENT (No such file or directory)',
    '101 statx(AT_FDCWD, "/usr/share/dir/", AT_STATX_SYNC_AS_STAT, STATX_ALL, 0x7ffd) = 0',
    '101 execve("/usr/bin/helper", ["/usr/bin/helper", "/not/a/lookup"], 0x1 /* 2 vars */) = 0',
    '101 renameat2(AT_FDCWD, "/a/b", AT_FDCWD, "/c/d", RENAME_NOREPLACE) = -1 EXDEV (Invalid cross-device link)',
    '101 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---',
    '101 +++ exited with 0 +++',
  ].join('\n');
  assert.deepEqual(pathsFromTrace(trace, '/usr/bin/prog', '/box', EXCLUDED), {
    paths: ['/a/b', '/c/d', '/etc/ld.so.cache', '/usr/bin/helper', '/usr/bin/prog', '/usr/lib/crt1.o', '/usr/lib/with"quote', '/usr/share/dir'],
    unplaced: 1,
  });
});

test('a trace without the stage\'s exec, or with a syscall of unknown arguments, is refused', () => {
  assert.throws(() => pathsFromTrace('1 openat(AT_FDCWD, "/x", O_RDONLY) = 3\n', '/usr/bin/prog', '/box', EXCLUDED), /no successful execve of \/usr\/bin\/prog/);
  const unknown = '1 execve("/usr/bin/prog", ["/usr/bin/prog"], 0x1 /* 0 vars */) = 0\n1 frobnicateat(AT_FDCWD, "/x") = 0\n';
  assert.throws(() => pathsFromTrace(unknown, '/usr/bin/prog', '/box', EXCLUDED), /does not know: frobnicateat/);
});

test('a list compared with its trace: paths new to it and paths gone from it', () => {
  assert.deepEqual(diffStage('run', ['/a', '/b'], { paths: ['/b', '/c'], unplaced: 0 }), { stage: 'run', recorded: 2, traced: 2, cpuDependent: 0, added: ['/c'], removed: ['/a'] });
});

test("the loader's CPU-dependent directories are not compared: a list written on another CPU is current", () => {
  // As traced on an AMD EPYC (recorded) and on an Intel Xeon with AVX-512 (traced).
  const recorded = ['/usr/lib/libz.so.1', '/usr/lib/tls/x86_64/x86_64/libz.so.1', '/usr/lib/x86_64/x86_64', '/usr/lib/glibc-hwcaps/x86-64-v3/libz.so.1'];
  const traced = ['/usr/lib/libz.so.1', '/usr/lib/haswell/avx512_1/libz.so.1', '/usr/lib/tls/haswell', '/usr/lib/glibc-hwcaps/x86-64-v4/libz.so.1', '/usr/lib/xeon_phi'];
  assert.deepEqual(diffStage('run', recorded, { paths: traced, unplaced: 0 }), { stage: 'run', recorded: 4, traced: 5, cpuDependent: 7, added: [], removed: [] });
  // Anything else still counts, next to them: a directory named like one deeper in a path, too.
  const others = ['/usr/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib/go-1.19/src/crypto/tls/conn.go', '/usr/lib/tls/x86_64/notes.txt'];
  assert.deepEqual(diffStage('run', recorded, { paths: [...traced, ...others], unplaced: 0 }).added, others);
});

const skip = whyNoLayerBuilds();

describe("the repository's start-up path lists against their images", { skip }, () => {
  const runtimes = loadRuntimes();
  before(async () => {
    await buildImages([...new Set(runtimes.map((r) => r.image))], { store: openImageStore(dataDirFromEnv()), definitionsDir: defaultDefinitionsDir() });
  });

  // Each runtime's own stages, and each of its variants' (traced in a root of their own).
  const traced = runtimes.flatMap((runtime) => [
    { name: runtime.id, stages: runtime },
    ...Object.keys(runtime.variants ?? {}).map((variant) => ({ name: `${runtime.id} variant ${variant}`, stages: variantOf(runtime, variant)! })),
  ]);
  for (const { name, stages } of traced) {
    it(`${name}: its lists are what its hello world looks up`, async () => {
      const trace = await traceStartupPaths(stages);
      for (const stage of ['compile', 'run'] as const) {
        if (!trace[stage]) continue;
        const diff = diffStage(stage, stages[stage]?.startupPaths, trace[stage]);
        const fix = '`npm run -s startup-paths -- --write` rewrites the lists (images/README.md, "Start-up paths")';
        assert.deepEqual({ new: diff.added, gone: diff.removed }, { new: [], gone: [] }, `${name} ${stage}.startupPaths differ from the trace: ${fix}`);
      }
    });
  }

  it('the trace mounts what the engine mounts, and stops at a mount point it does not know', async () => {
    const bash = runtimes.find((r) => r.id === 'bash')!;
    await assert.rejects(traceStartupPaths(bash, dataDirFromEnv(), [...ENGINE_MOUNT_POINTS, 'sys']), /the engine mounts \/sys and this trace does not/);
  });

  it("the command traces a variant's stages too, and --write writes their lists", async () => {
    const scratch = scratchDir('startup-paths-variant');
    try {
      const dir = join(scratch.dir, 'runtimes');
      mkdirSync(dir);
      const file = join(dir, 'python.json');
      const json = JSON.parse(readFileSync(join(defaultRuntimesDir(), 'python.json'), 'utf8')) as { run: { argv: string[] }; variants?: unknown };
      // The runtime's run, isolated (-I): the same program, looking up the same paths.
      json.variants = { isolated: { run: { argv: [json.run.argv[0], '-I', '{entry}'], startupPaths: ['/no/longer/there'] } } };
      writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
      const command = ['--import', 'tsx', join(repoRoot(), 'scripts/startup-paths.ts'), '--runtimes-dir', dir];
      await assert.rejects(execFileAsync(process.execPath, command, { cwd: repoRoot() }), (err: { code?: number; stdout?: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stdout ?? '', /^python run: (\d+) paths traced, \1 recorded, the same/m);
        assert.match(err.stdout ?? '', /^python variant isolated run: \d+ paths traced, 1 recorded: \d+ new, 1 gone/m);
        assert.ok(err.stdout?.includes('  - /no/longer/there\n'), err.stdout);
        return true;
      });
      await execFileAsync(process.execPath, [...command, '--write'], { cwd: repoRoot() });
      const written = JSON.parse(readFileSync(file, 'utf8')) as { run: { startupPaths: string[] }; variants: { isolated: { run: { startupPaths: string[] } } } };
      assert.ok(written.variants.isolated.run.startupPaths.includes('/usr/lib/python3.11/encodings/__init__.py'), 'the variant\'s own trace');
      const { stdout } = await execFileAsync(process.execPath, command, { cwd: repoRoot() });
      assert.match(stdout, /^python variant isolated run: (\d+) paths traced, \1 recorded, the same/m);
    } finally {
      scratch.remove();
    }
  });

  it('the command reports a stale list, exits 1, and --write makes it current', async () => {
    const scratch = scratchDir('startup-paths');
    try {
      const dir = join(scratch.dir, 'runtimes');
      mkdirSync(dir);
      const file = join(dir, 'python.json');
      copyFileSync(join(defaultRuntimesDir(), 'python.json'), file);
      const current = readFileSync(file, 'utf8');
      const json = JSON.parse(current) as { run: { startupPaths: string[] } };
      const count = json.run.startupPaths.length;
      const dropped = json.run.startupPaths.shift()!;
      json.run.startupPaths.push('/no/longer/there');
      writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
      const command = ['--import', 'tsx', join(repoRoot(), 'scripts/startup-paths.ts'), '--runtimes-dir', dir];
      await assert.rejects(execFileAsync(process.execPath, command, { cwd: repoRoot() }), (err: { code?: number; stdout?: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stdout ?? '', new RegExp(`python run: ${count} paths traced, ${count} recorded: 1 new, 1 gone`));
        assert.ok(err.stdout?.includes(`  + ${dropped}\n`) && err.stdout.includes('  - /no/longer/there\n'), err.stdout);
        return true;
      });
      await execFileAsync(process.execPath, [...command, '--write'], { cwd: repoRoot() });
      assert.equal(readFileSync(file, 'utf8'), current);
      const { stdout } = await execFileAsync(process.execPath, command, { cwd: repoRoot() });
      assert.match(stdout, new RegExp(`python run: ${count} paths traced, ${count} recorded, the same`));
    } finally {
      scratch.remove();
    }
  });
});
