// A benchmark stopped before its end (a signal, or its stdout closed under it: `| head`) closes
// what it opened, once, exits with the conventional status, and prints nothing after it; a
// second signal while it closes exits at once; a benchmark that ends normally closes once too.
// Runs test/loadtest/fixtures/interruptible.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { until } from '../helpers/until.js';

const fixture = fileURLToPath(new URL('./fixtures/interruptible.ts', import.meta.url));
const scratch = mkdtempSync(join(os.tmpdir(), 'cellblock-interrupt-test-'));
let runs = 0;

interface Outcome {
  status: number | null;
  stderr: string;
  /** What close and the line after runInterruptible wrote, in order. */
  marker: string[];
}

/** Runs the fixture; `onReady` gets the child once it printed "ready". */
function runFixture(
  mode: 'wait' | 'flood' | 'finish',
  onReady: (child: ReturnType<typeof spawn>, marker: string) => void = () => {},
): Promise<Outcome> {
  const marker = join(scratch, `marker-${++runs}`);
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, marker, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let ready = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    if (!ready && chunk.toString().includes('ready')) {
      ready = true;
      onReady(child, marker);
    }
  });
  return new Promise((resolve) =>
    child.once('close', (status) => {
      let lines: string[] = [];
      try {
        lines = readFileSync(marker, 'utf8').trim().split('\n');
      } catch {
        // no marker: nothing was closed
      }
      resolve({ status, stderr, marker: lines });
    }),
  );
}

after(() => rmSync(scratch, { recursive: true, force: true }));

describe('runInterruptible (the benchmarks\' interrupt handling)', () => {
  it('closes once and returns when the body ends', async () => {
    const outcome = await runFixture('finish');
    assert.equal(outcome.status, 0, outcome.stderr);
    assert.deepEqual(outcome.marker, ['closing', 'closed', 'after']);
  });

  it('on SIGTERM closes once, exits 143 and goes no further', async () => {
    const outcome = await runFixture('wait', (child) => child.kill('SIGTERM'));
    assert.equal(outcome.status, 143, outcome.stderr);
    assert.deepEqual(outcome.marker, ['closing', 'closed']);
    assert.match(outcome.stderr, /fixture: SIGTERM: closing what it opened, then exiting/);
  });

  it('exits at once, without waiting for close, on a second signal while it closes', async () => {
    const outcome = await runFixture('wait', (child, marker) => {
      child.kill('SIGINT');
      // Once close has begun (it then takes 200 ms more).
      void until(() => existsSync(marker), 5000).then(() => child.kill('SIGTERM'));
    });
    assert.equal(outcome.status, 143, outcome.stderr);
    assert.deepEqual(outcome.marker, ['closing']);
    assert.equal(outcome.stderr.match(/closing what it opened/g)?.length, 1, outcome.stderr);
    assert.match(outcome.stderr, /fixture: SIGTERM while closing: exiting without waiting/);
  });

  it('when its stdout is closed (EPIPE) closes once, exits 141, and hides the body\'s failure after it', async () => {
    const outcome = await runFixture('flood', (child) => child.stdout!.destroy());
    assert.equal(outcome.status, 141, outcome.stderr);
    assert.deepEqual(outcome.marker, ['closing', 'closed']);
    assert.match(outcome.stderr, /fixture: stdout closed \(EPIPE\)/);
    assert.doesNotMatch(outcome.stderr, /tripped over/);
  });
});
