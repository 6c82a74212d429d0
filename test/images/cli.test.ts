// The images command as a user runs it (`node --import tsx src/images/cli.ts ...`), against a
// scratch data dir: progress while building, a no-op rebuild, the listing, and exit codes for
// bad input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot } from '../../src/images/paths.js';
import { scratchDir, whyNoLayerBuilds } from './helpers.js';

const scratch = scratchDir('cli');
after(() => scratch.remove());

function cli(...args: string[]): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  return cliWith({}, ...args);
}

/** With `env` over the scratch data dir's; `timeoutMs`: killed past it (signal SIGKILL). */
function cliWith(options: { env?: Record<string, string>; timeoutMs?: number }, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot(), 'src/images/cli.ts'), ...args], {
    cwd: repoRoot(),
    encoding: 'utf8',
    env: { ...process.env, CELLBLOCK_DATA_DIR: join(scratch.dir, 'data'), ...options.env },
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs, killSignal: 'SIGKILL' as const }),
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('cellblock images', () => {
  it('builds the busybox image with progress lines, then finds it up to date', { skip: whyNoLayerBuilds() }, () => {
    const first = cli('build', '--layers-at-once', '2', 'busybox');
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /busybox: 1 of 1 layer\(s\) to build/);
    assert.match(first.stdout, /busybox: finalize/);
    assert.match(first.stdout, /1 image\(s\) ready, 1 layer\(s\) built/);
    const again = cli('build', 'busybox');
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /up to date/);
    assert.match(again.stdout, /0 layer\(s\) built/);
    const list = cli('list');
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^busybox\s+built\s+[0-9a-f]{12}\s+1\s/m);
    assert.match(list.stdout, /^python\s+not built\s/m);
  });

  it('says which image is unknown, and builds nothing', () => {
    const r = cli('build', 'cobol');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown image "cobol" \(known: .*python/);
  });

  it('answers usage errors with exit status 2 and the usage', () => {
    for (const args of [['frobnicate'], [], ['build', '--fast'], ['list', '--data-dir'], ['build', '--layers-at-once', '0'], ['build', '--layers-at-once', 'two'], ['build', '--layers-at-once']]) {
      const r = cli(...args);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, /usage: cellblock images build/);
    }
    // Asked for: on stdout, as `cellblock --help`'s, a line at a time.
    const help = cli('--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^usage: cellblock images build .*\n$/s);
    assert.equal(help.stderr, '');
  });

  it('refuses a data dir overlayfs cannot use', () => {
    const r = cli('list', '--data-dir', '/tmp/a:b');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^cellblock images: --data-dir: data directory may not contain ':'/);
  });

  it('refuses a data dir it cannot make (under a file; on procfs) in one line naming where it came from, at once', () => {
    const file = join(scratch.dir, 'a-file');
    writeFileSync(file, '');
    const refusals: [{ env?: Record<string, string> }, string[], string][] = [
      [{ env: { CELLBLOCK_DATA_DIR: join(file, 'data') } }, ['build', 'busybox'], `CELLBLOCK_DATA_DIR: ${file}/data cannot be made: ${file} is not a directory`],
      [{}, ['build', '--data-dir', join(file, 'data'), 'busybox'], `--data-dir: ${file}/data cannot be made: ${file} is not a directory`],
      // A recursive mkdirSync under /proc never returned.
      [{ env: { CELLBLOCK_DATA_DIR: '/proc/cellblock-images-test/data' } }, ['build', 'busybox'], "CELLBLOCK_DATA_DIR: /proc/cellblock-images-test/data is on the kernel's proc filesystem (/proc), which holds no files: choose a directory on a disk or a tmpfs"],
    ];
    for (const [options, args, line] of refusals) {
      const r = cliWith({ ...options, timeoutMs: 15_000 }, ...args);
      assert.equal(r.signal, null, 'ended by itself, not by the timeout');
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, `cellblock images: ${line}\n`, 'one line');
    }
  });
});
