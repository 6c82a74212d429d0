// What a fresh overlay per container costs the program run in it: the same program chrooted in
// one overlay of an image's layers mounted once (as the load test's bare side runs it) and in a
// fresh overlay mounted for every run over a tmpfs upper (as a pool slot's root is made),
// taking turns run by run (loadtest/overlay-fresh.c, compiled here with the host's gcc); and, where
// the image's first runtime lists startupPaths, in a fresh overlay in which those paths were looked
// up first, as the pool's mount agent does while preparing a root. The program gets the
// environment of that runtime. Not a test: figures only.
//
//   npm run bench:overlay [-- --image python --runs 150 --rounds 3] [-- PROGRAM ARG...]
//
// Needs root and the image built (cellblock images build python).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stageEnv } from '../src/executor/argv.js';
import { dataDirFromEnv } from '../src/images/paths.js';
import { loadRuntimes } from '../src/images/runtimes.js';
import { openImageStore, overlayLowerdir } from '../src/images/store.js';
import { hostNote } from './service/host.js';
import { runInterruptible } from './service/interrupt.js';
import { makeScratchDir } from './service/scratch.js';

const { values, positionals } = parseArgs({
  options: {
    image: { type: 'string', default: 'python' },
    runs: { type: 'string', default: '150' },
    rounds: { type: 'string', default: '3' },
  },
  allowPositionals: true,
});
const image = openImageStore(dataDirFromEnv()).get(values.image);
if (!image) {
  console.error(`image ${values.image} is not built (cellblock images build ${values.image})`);
  process.exit(2);
}
const runtime = loadRuntimes().find((r) => r.image === values.image);
const program = positionals.length > 0 ? positionals : ['/usr/bin/python3', '-c', 'print("Hello, World!")'];
const scratch = await makeScratchDir('bench-overlay');
let runner: ChildProcess | undefined;
await runInterruptible(
  'bench:overlay',
  async () => {
    const binary = path.join(scratch, 'overlay-fresh');
    execFileSync('/usr/bin/gcc', ['-O2', '-Wall', '-o', binary, fileURLToPath(new URL('./overlay-fresh.c', import.meta.url))], { stdio: 'inherit' });
    console.log(`# ${hostNote()}`);
    console.log(`# image ${values.image}, ${values.runs} runs per round and overlay: ${program.join(' ')}`);
    const startupPaths = runtime?.run.startupPaths ?? [];
    const lookups: string[] = [];
    if (startupPaths.length > 0) {
      const file = path.join(scratch, 'startup-paths');
      writeFileSync(file, startupPaths.join('\n') + '\n');
      lookups.push('-s', file);
      console.log(`# "looked up": the ${startupPaths.length} startupPaths of runtime ${runtime!.id} looked up in the fresh overlay first`);
    }
    // Started and awaited, not spawnSync: the event loop stays free for an interrupt's close.
    const child = spawn(binary, [...lookups, overlayLowerdir(image), scratch, values.runs!, values.rounds!, ...program], {
      env: runtime ? stageEnv(runtime.env, runtime.defaultLimits) : { PATH: '/usr/bin:/bin' },
      stdio: 'inherit',
    });
    runner = child;
    const status = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
    process.exitCode = status ?? 1;
  },
  async () => {
    // The runner's mounts live in its own mount namespace and end with it.
    if (runner && runner.exitCode === null && runner.signalCode === null) {
      const exited = new Promise((resolve) => runner!.once('exit', resolve));
      runner.kill('SIGKILL');
      await exited;
    }
    rmSync(scratch, { recursive: true, force: true });
  },
);
