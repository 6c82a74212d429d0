// The judge compile cache on its own (no sandbox): what it keeps and what it refuses, the copy it
// keeps (never following a link), its budget with the least recently used going first, an entry a
// job holds outliving its eviction, and the key's parts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompileCache, MAX_CACHED_TREE_ENTRIES, type CompileKeyParts } from '../../src/executor/compile-cache.js';
import type { StageResult } from '../../src/executor/types.js';
import { SHC } from './helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'cellblock-compile-cache-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let trees = 0;

const result = (stderr = ''): StageResult => ({
  verdict: 'ok',
  exitCode: 0,
  signal: null,
  signalName: null,
  stdout: Buffer.alloc(0),
  stderr: Buffer.from(stderr),
  stdoutTruncated: false,
  stderrTruncated: false,
  metrics: { cpuTimeMs: 1, wallTimeMs: 2, peakMemoryBytes: 3 },
});

/** A compile's work dir holding `files` (name: content). */
function tree(files: Record<string, string>): string {
  const dir = join(scratch, `tree-${++trees}`);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

const cacheOf = (maxBytes: number, build = () => 'layers-1') => new CompileCache(join(scratch, `cache-${++trees}`), maxBytes, build);

test('a kept compile is taken by the next job with its result; its files are a copy, owned by root', async () => {
  const cache = cacheOf(1000);
  const from = tree({ prog: 'binary', 'sub/data': 'x' });
  assert.equal(cache.take('k'), undefined);
  const kept = await cache.keep('k', from, result('warning\n'));
  assert.ok(kept);
  rmSync(from, { recursive: true });
  const taken = cache.take('k')!;
  assert.equal(taken.dir, kept.dir);
  assert.equal(taken.result.stderr.toString(), 'warning\n');
  assert.equal(readFileSync(join(taken.dir, 'prog'), 'utf8'), 'binary');
  assert.equal(readFileSync(join(taken.dir, 'sub/data'), 'utf8'), 'x');
  assert.equal(lstatSync(join(taken.dir, 'prog')).uid, 0);
  kept.release();
  taken.release();
  assert.deepEqual(cache.stats(), { entries: 1, bytes: 'binary'.length + 'x'.length + 'warning\n'.length, hits: 1, misses: 1, notKept: 0 });
  await cache.close();
});

test('a link the compile left is kept as a link, never followed', async () => {
  const cache = cacheOf(1000);
  const outside = join(scratch, 'outside');
  writeFileSync(outside, 'a secret of the host, larger than the budget'.repeat(100));
  const from = tree({ prog: 'p' });
  symlinkSync(outside, join(from, 'link'));
  const kept = (await cache.keep('k', from, result()))!;
  assert.equal(readlinkSync(join(kept.dir, 'link')), outside);
  assert.equal(cache.stats().bytes, 1, 'the link\'s target is not counted: it is not copied');
  kept.release();
});

test('a tree above the budget, or with more entries than MAX_CACHED_TREE_ENTRIES, is not kept; hard links count as copies', async () => {
  const cache = cacheOf(100);
  assert.equal(await cache.keep('big', tree({ prog: 'x'.repeat(101) }), result()), undefined);
  assert.equal(await cache.keep('loud', tree({ prog: 'x' }), result('y'.repeat(100))), undefined, 'its output counts');
  const linked = tree({ prog: 'x'.repeat(40) });
  linkSync(join(linked, 'prog'), join(linked, 'again'));
  linkSync(join(linked, 'prog'), join(linked, 'more'));
  assert.equal(await cache.keep('linked', linked, result()), undefined, 'three copies of 40 bytes');
  const many = tree({});
  for (let i = 0; i <= MAX_CACHED_TREE_ENTRIES; i++) writeFileSync(join(many, `f${i}`), '');
  assert.equal(await cache.keep('many', many, result()), undefined);
  assert.deepEqual(cache.stats(), { entries: 0, bytes: 0, hits: 0, misses: 0, notKept: 4 });
  assert.deepEqual(readdirSync(join(scratch, `cache-${trees - 4}`)), [], 'nothing of them left in the cache\'s dir');
});

test('the budget holds: the least recently used goes first, and one a job holds is removed when it lets go', async () => {
  const cache = cacheOf(30);
  for (const key of ['a', 'b', 'c']) (await cache.keep(key, tree({ prog: key.repeat(10) }), result()))!.release();
  cache.take('a')!.release(); // b is now the least recently used
  const held = cache.take('b')!;
  cache.take('a')!.release();
  cache.take('c')!.release();
  // Held, b is still the oldest: evicted from the index, its files kept until released.
  (await cache.keep('d', tree({ prog: 'd'.repeat(10) }), result()))!.release();
  assert.equal(cache.take('b'), undefined);
  assert.equal(readFileSync(join(held.dir, 'prog'), 'utf8'), 'b'.repeat(10));
  assert.deepEqual([cache.stats().entries, cache.stats().bytes], [3, 30]);
  held.release();
  await cache.close();
  assert.equal(existsSync(held.dir), false);
  // Not held, a is the oldest now (a, c, d), and goes at once.
  (await cache.keep('e', tree({ prog: 'e'.repeat(10) }), result()))!.release();
  await cache.close();
  assert.equal(cache.take('a'), undefined);
  assert.deepEqual(readdirSync(join(held.dir, '..')).sort(), ['3', '4', '5'], 'c, d and e: the entries are numbered as kept');
});

test('the key changes with each part a compile depends on, the image\'s build among them', () => {
  let build = 'layers-1';
  const cache = cacheOf(1000, () => build);
  const parts: CompileKeyParts = {
    runtime: SHC,
    argv: ['/bin/sh', '-c', 'compile', 'judge.sh'],
    limits: SHC.defaultLimits,
    files: [{ name: 'judge.sh', content: Buffer.from('exit 0\n') }],
  };
  const key = cache.key(parts);
  assert.equal(cache.key({ ...parts, files: [{ name: 'judge.sh', content: Buffer.from('exit 0\n') }] }), key, 'the same content is the same key');
  const changed = [
    { ...parts, argv: [...parts.argv, '-O2'] },
    { ...parts, limits: { ...parts.limits, cpuTimeMs: 1999 } },
    { ...parts, files: [{ name: 'judge.sh', content: Buffer.from('exit 1\n') }] },
    { ...parts, files: [{ name: 'other.sh', content: Buffer.from('exit 0\n') }] },
    { ...parts, files: [...parts.files, { name: 'testlib.h', content: Buffer.from('') }] },
    { ...parts, runtime: { ...SHC, env: { ...SHC.env, LANG: 'C' } } },
    { ...parts, runtime: { ...SHC, compile: { ...SHC.compile!, argv: [...SHC.compile!.argv, '-x'] } } },
    { ...parts, runtime: { ...SHC, image: 'other' } },
  ];
  const keys = new Set([key, ...changed.map((p) => cache.key(p))]);
  assert.equal(keys.size, changed.length + 1);
  build = 'layers-2';
  assert.notEqual(cache.key(parts), key, 'a rebuilt image');
});
