// The bare side: a scenario's program run with no service and no sandbox, by the small C runner
// next to this file (compiled with the host's gcc into a scratch dir), either as a closed loop on
// `loops` threads (throughput) or one at a time with a gap (sporadic latency). A program of an
// image runs from that image's files (the runner's -r: its layers as a chroot, nothing around
// the runs), so that both sides run the same files and the host's packages weigh on neither.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { dataDirFromEnv } from '../../src/images/paths.js';
import { openImageStore, overlayLowerdir } from '../../src/images/store.js';
import { msToSeconds, msToUs, usToMs } from '../../src/units.js';
import type { BareProgram } from './scenarios.js';
import { makeScratchDir } from './scratch.js';
import { REPO_ROOT } from './stack.js';

const execFileAsync = promisify(execFile);

export class BareRunError extends Error {
  override readonly name = 'BareRunError';
}

export interface BareRun {
  latenciesMs: number[];
  /** Per run, in the order of latenciesMs: the user + system CPU time of its programs and of every
   * descendant they reaped (wait4's rusage), as a container's `cpuTimeMs` counts its run's. */
  cpuMs: number[];
  elapsedMs: number;
  /** Iterations whose program did not exit 0. */
  failures: number;
  throughputPerSecond: number;
}

export interface BareRunOptions {
  runs: number;
  loops: number;
  gapMs: number;
  /** How a program is started: posix_spawn (vfork + exec, the default) or fork then exec. */
  spawnWith?: 'posix_spawn' | 'fork';
}

export interface BareRunner {
  run(program: BareProgram, options: BareRunOptions): Promise<BareRun>;
  close(): void;
}

/** dataDir: where the programs' images are built (CELLBLOCK_DATA_DIR's default). */
export async function createBareRunner(dataDir = dataDirFromEnv()): Promise<BareRunner> {
  const scratch = await makeScratchDir('bare-runner');
  const binary = path.join(scratch, 'bare-runner');
  try {
    await execFileAsync('/usr/bin/gcc', ['-O2', '-Wall', '-pthread', '-o', binary, path.join(REPO_ROOT, 'loadtest/service/bare-runner.c')]);
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    throw new BareRunError(`cannot build the bare runner with /usr/bin/gcc (build-essential): ${(error as Error).message}`);
  }
  let runIndex = 0;
  const store = openImageStore(dataDir);
  const imageRoot = (image: string): string => {
    const built = store.get(image);
    if (!built) throw new BareRunError(`image ${image} is not built in ${dataDir}: run \`cellblock images build ${image}\``);
    return overlayLowerdir(built);
  };

  async function run(program: BareProgram, options: BareRunOptions): Promise<BareRun> {
    const base = path.join(scratch, `run${runIndex++}`);
    for (let loop = 0; loop < options.loops; loop++) {
      const dir = path.join(base, String(loop));
      mkdirSync(dir, { recursive: true });
      for (const [name, content] of Object.entries(program.files)) writeFileSync(path.join(dir, name), content);
    }
    const args = [...(options.spawnWith === 'fork' ? ['-f'] : []), ...(program.image ? ['-r', imageRoot(program.image)] : []), '-n', String(options.runs), '-p', String(options.loops), '-g', String(msToUs(options.gapMs)), '-d', base, '--'];
    program.commands.forEach((command, index) => args.push(...(index > 0 ? [';'] : []), ...command));
    const child = spawn(binary, args, { env: program.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    rmSync(base, { recursive: true, force: true });
    if (code !== 0) throw new BareRunError(`bare runner exited ${code}: ${stderr.trim()}`);
    const latenciesMs: number[] = [];
    const cpuMs: number[] = [];
    let failures = 0;
    let elapsedMs = NaN;
    for (const line of stdout.trim().split('\n')) {
      const fields = line.split(' ');
      if (fields[0] === 'elapsed_us') {
        elapsedMs = usToMs(Number(fields[1]));
        continue;
      }
      latenciesMs.push(usToMs(Number(fields[1])));
      cpuMs.push(usToMs(Number(fields[3])));
      if (fields[2] !== '0') failures++;
    }
    return { latenciesMs, cpuMs, elapsedMs, failures, throughputPerSecond: latenciesMs.length / msToSeconds(elapsedMs) };
  }

  return { run, close: () => rmSync(scratch, { recursive: true, force: true }) };
}
