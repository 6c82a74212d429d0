// dyingWithParent (src/parent-death.ts): a helper started through it ends when the process that
// started it is killed outright, and its pid is the command's own (setpriv execs it). The private
// redis-server and the load test's service processes rely on it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SETPRIV_PATH } from '../src/parent-death.js';
import { processAlive } from './helpers/processes.js';
import { until } from './helpers/until.js';

const moduleUrl = new URL('../src/parent-death.ts', import.meta.url).href;
const noSetpriv = !existsSync(SETPRIV_PATH) && 'util-linux setpriv is missing: helpers then outlive a killed parent';

describe('dyingWithParent', { skip: noSetpriv }, () => {
  it('ends the helper when its parent is killed with SIGKILL', async () => {
    // The parent: a Node process that starts `sleep 60` through dyingWithParent and prints its pid.
    const script = `
      const { spawn } = await import('node:child_process');
      const { dyingWithParent } = await import(${JSON.stringify(moduleUrl)});
      const command = dyingWithParent('TERM', '/bin/sleep', ['60']);
      const child = spawn(command.file, command.args, { stdio: 'ignore' });
      console.log(child.pid);
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      parent.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      parent.once('exit', (code) => reject(new Error(`the parent exited first (${code})`)));
    });
    let helperPid: number | undefined = pid;
    try {
      // setpriv has exec'd the command: the child's pid is sleep's.
      await until(() => processAlive(pid) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep', 5000);
      const exited = new Promise((resolve) => parent.once('exit', resolve));
      parent.kill('SIGKILL');
      await exited;
      await until(() => !processAlive(pid), 5000);
      helperPid = undefined;
    } finally {
      if (helperPid !== undefined && processAlive(helperPid)) process.kill(helperPid, 'SIGKILL');
      if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
    }
  });
});
