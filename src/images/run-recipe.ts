// Runs one recipe script (images/build/*.sh) as root in a private mount and PID namespace
// (`unshare --mount --pid --fork --kill-child`): every mount the recipe makes and every process
// it starts ends with the namespace, even when the recipe fails. `setpriv --pdeathsig KILL`
// makes unshare die with the builder, so a killed builder takes the namespace with it instead of
// leaving an orphaned recipe writing into a build dir the next build removes. Output goes to the
// layer's log file and, line by line, to the caller. An abort (`signal`, a stopped build) kills
// unshare, and with it the namespace; the run ends once every process of it has closed its output.
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { ImageBuildError } from './errors.js';

export interface RecipeRun {
  image: string;
  recipesDir: string;
  script: string;
  args: string[];
  logFile: WriteStream;
  logPath: string;
  /** Extra environment (proxies); the recipe otherwise gets a minimal one. */
  env?: Record<string, string>;
  onLine: (line: string) => void;
  /** Kills the recipe; the run then rejects with the signal's reason. */
  signal?: AbortSignal;
}

const TAIL_LINES = 15;

export function openLog(path: string): WriteStream {
  return createWriteStream(path, { flags: 'w' });
}

export function runRecipe(run: RecipeRun): Promise<void> {
  if (run.signal?.aborted) return Promise.reject(run.signal.reason);
  const argv = [
    '--pdeathsig', 'KILL', '--',
    'unshare', '--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private', '--',
    '/bin/sh', join(run.recipesDir, run.script), ...run.args,
  ];
  run.logFile.write(`$ setpriv ${argv.join(' ')}\n`);
  const child = spawn('setpriv', argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own: a terminal's Ctrl-C signals the builder's group, and the
    // builder stops the recipe in order (the abort below); reached first, the recipe would die
    // of it and the build fail as "killed by SIGINT". A killed builder still takes it along
    // (--pdeathsig).
    detached: true,
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8', ...run.env },
  });
  const tail: string[] = [];
  const onData = (stream: NodeJS.ReadableStream): void => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      run.logFile.write(chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        run.onLine(line);
      }
    });
  };
  onData(child.stdout);
  onData(child.stderr);
  // SIGKILL to unshare (setpriv execs it): its child, the namespace's init, has a SIGKILL death
  // signal (--kill-child), and the kernel kills a PID namespace's processes when its init dies.
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  run.signal?.addEventListener('abort', kill, { once: true });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new ImageBuildError(run.image, run.script, `cannot start setpriv: ${err.message}`, run.logPath)));
    child.on('close', (code, signal) => {
      run.signal?.removeEventListener('abort', kill);
      if (run.signal?.aborted) return reject(run.signal.reason);
      if (code === 0) return resolve();
      const how = signal ? `killed by ${signal}` : `exit status ${code}`;
      reject(new ImageBuildError(run.image, run.script, `${how}; last output:\n  ${tail.join('\n  ')}`, run.logPath));
    });
  });
}
