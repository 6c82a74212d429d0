// The judge compile cache on its own (no sandbox): what it keeps and what it refuses, the copy it
// keeps (never following a link), its budget with the least recently used going first, an entry a
// job holds outliving its eviction, the key's parts, and the report of compiles not kept for the
// host's reason.
import { execFileSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompileCache, KEEP_FAILURE_QUIET_MS, MAX_CACHED_TREE_ENTRIES, MAX_KEPT_COMPILES, type CachedCompile, type CompileKeyParts } from '../../src/executor/compile-cache.js';
import { TREE_ENTRY_BYTES } from '../../src/executor/files.js';
import { MiB } from '../../src/units.js';
import type { StageResult } from '../../src/executor/types.js';
import { SHC } from './helpers.js';

// The kept files are root's (lchown): only root makes them.
const skip = process.getuid?.() === 0 ? false : 'needs root: the kept files are chowned to root';
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

/** take()'s kept compile, or undefined, its turn to compile ended at once (nothing kept). */
async function taken(cache: CompileCache, key: string): Promise<CachedCompile | undefined> {
  const lookup = await cache.take(key);
  lookup.turn?.('failed');
  return lookup.kept;
}

const cacheOf = (maxBytes: number, build = () => 'layers-1') => new CompileCache(join(scratch, `cache-${++trees}`), maxBytes, build);

test('a kept compile is taken by the next job with its result; its files are a copy, owned by root', { skip }, async () => {
  const cache = cacheOf(MiB);
  const from = tree({ prog: 'binary', 'sub/data': 'x' });
  for (const name of ['', 'prog', 'sub', 'sub/data']) chownSync(join(from, name), 1000, 1000); // the sandbox's, as a compile leaves them
  assert.equal(await taken(cache, 'k'), undefined);
  const kept = await cache.keep('k', from, result('warning\n'));
  assert.ok(kept);
  rmSync(from, { recursive: true });
  const again = (await taken(cache, 'k'))!;
  assert.equal(again.dir, kept.dir);
  assert.equal(again.result.stderr.toString(), 'warning\n');
  assert.equal(readFileSync(join(again.dir, 'prog'), 'utf8'), 'binary');
  assert.equal(readFileSync(join(again.dir, 'sub/data'), 'utf8'), 'x');
  assert.equal(lstatSync(join(again.dir, 'prog')).uid, 0);
  kept.release();
  again.release();
  // A block for the kept compile and one for each of prog, sub and sub/data, their bytes, its output.
  const bytes = 4 * TREE_ENTRY_BYTES + 'binary'.length + 'x'.length + 'warning\n'.length;
  assert.deepEqual(cache.stats(), { entries: 1, bytes, hits: 1, misses: 1, waits: 0, notKept: 0 });
  await cache.close();
});

test('a link the compile left is kept as a link, never followed', { skip }, async () => {
  const cache = cacheOf(MiB);
  const outside = join(scratch, 'outside');
  writeFileSync(outside, 'a secret of the host, larger than an entry may be'.repeat(4096));
  const from = tree({ prog: 'p' });
  symlinkSync(outside, join(from, 'link'));
  const kept = (await cache.keep('k', from, result()))!;
  assert.ok(kept, 'kept: the target is not counted, only the link');
  assert.equal(readlinkSync(join(kept.dir, 'link')), outside);
  assert.equal(cache.stats().bytes, 3 * TREE_ENTRY_BYTES + 1 + outside.length);
  kept.release();
});

test('a compile above an entry\'s share of the budget is not kept, its copy removed; hard links count as copies', { skip }, async () => {
  const share = 4 * TREE_ENTRY_BYTES; // of a budget of 8 shares
  const dir = join(scratch, `cache-${++trees}`);
  const cache = new CompileCache(dir, 8 * share, () => 'layers-1');
  const room = share - 2 * TREE_ENTRY_BYTES; // for prog's bytes, beside the compile's own block and prog's
  assert.ok(await cache.keep('fits', tree({ prog: 'x'.repeat(room) }), result()), 'exactly a share');
  assert.equal(await cache.keep('big', tree({ prog: 'x'.repeat(room + 1) }), result()), undefined);
  assert.equal(await cache.keep('loud', tree({ prog: '' }), result('y'.repeat(room + 1))), undefined, 'its output counts');
  await cache.close();
  assert.deepEqual(readdirSync(dir), ['1'], 'only the one kept: the copies stopped part way are removed');
  assert.deepEqual([cache.stats().entries, cache.stats().notKept], [1, 2]);

  // Room for four files' blocks and 399 bytes: four hard links of one 100-byte file are four
  // files of 100 bytes each, once copied, and do not fit; one does.
  const linkShare = 5 * TREE_ENTRY_BYTES + 399;
  const linking = new CompileCache(join(scratch, `cache-${++trees}`), 8 * linkShare, () => 'layers-1');
  const linked = tree({ prog: 'x'.repeat(100) });
  for (const name of ['again', 'more', 'most']) linkSync(join(linked, 'prog'), join(linked, name));
  assert.equal(await linking.keep('linked', linked, result()), undefined, 'four files of a block and 100 bytes each');
  const single = tree({ prog: 'x'.repeat(100), a: '', b: '', c: '' });
  assert.ok(await linking.keep('single', single, result()), 'the same entries with 100 bytes once fit');

  const roomy = cacheOf(8 * (MAX_CACHED_TREE_ENTRIES + 2) * TREE_ENTRY_BYTES);
  const many = tree({});
  for (let i = 0; i <= MAX_CACHED_TREE_ENTRIES; i++) writeFileSync(join(many, `f${i}`), '');
  assert.equal(await roomy.keep('many', many, result()), undefined, 'more entries than MAX_CACHED_TREE_ENTRIES');
  assert.equal(roomy.stats().notKept, 1);
});

test('the budget holds: the least recently used goes first, and one a job holds is removed when it lets go', { skip }, async () => {
  const entryBytes = 2 * TREE_ENTRY_BYTES + 10; // the compile's block, prog's block and its 10 bytes
  const dir = join(scratch, `cache-${++trees}`);
  const cache = new CompileCache(dir, 8 * entryBytes, () => 'layers-1');
  const keep = (key: string) => cache.keep(key, tree({ prog: key.repeat(10) }), result());
  const held = (await keep('a'))!;
  for (const key of ['b', 'c', 'd', 'e', 'f', 'g', 'h']) (await keep(key))!.release();
  (await taken(cache, 'b'))!.release(); // a, c, d, ..., h, b
  assert.deepEqual([cache.stats().entries, cache.stats().bytes], [8, 8 * entryBytes]);
  // The ninth: a is the least recently used; held, it leaves the index and keeps its files.
  (await keep('i'))!.release();
  assert.equal(await taken(cache, 'a'), undefined);
  assert.equal(readFileSync(join(held.dir, 'prog'), 'utf8'), 'a'.repeat(10));
  assert.deepEqual([cache.stats().entries, cache.stats().bytes], [8, 8 * entryBytes]);
  held.release();
  // The tenth: c goes, at once.
  (await keep('j'))!.release();
  await cache.close();
  assert.deepEqual(readdirSync(dir).sort(), ['10', '2', '4', '5', '6', '7', '8', '9'], 'b, d to h, i and j (numbered as kept)');
  assert.ok((await taken(cache, 'b')) && !(await taken(cache, 'c')));
});

test('two jobs keeping the same compile at once keep one copy', { skip }, async () => {
  const dir = join(scratch, `cache-${++trees}`);
  const cache = new CompileCache(dir, 64 * MiB, () => 'layers-1');
  // Above files.ts's synchronous copy size: the copies interleave on the thread pool.
  const big = 'x'.repeat(2 * MiB);
  const [first, second] = await Promise.all([cache.keep('k', tree({ prog: big }), result()), cache.keep('k', tree({ prog: big }), result())]);
  assert.equal(first!.dir, second!.dir);
  first!.release();
  second!.release();
  await cache.close();
  assert.deepEqual(readdirSync(dir), [first!.dir.split('/').pop()]);
  assert.deepEqual([cache.stats().entries, cache.stats().bytes], [1, 2 * TREE_ENTRY_BYTES + big.length]);
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

/** Whether `promise` is still pending once the callbacks queued now have run. */
async function pending(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  return !settled;
}

test('a job taking a compile that another job is making waits for its turn, and takes what it kept', { skip }, async () => {
  const cache = cacheOf(MiB);
  const first = await cache.take('k');
  assert.ok(first.turn);
  const second = cache.take('k');
  assert.equal(await pending(second), true, 'the second waits while the first compiles');
  const kept = (await cache.keep('k', tree({ prog: 'p' }), result()))!;
  first.turn('kept');
  const secondLookup = await second;
  assert.equal(secondLookup.kept?.dir, kept.dir, 'then takes what the first kept');
  kept.release();
  secondLookup.kept!.release();
  assert.deepEqual([cache.stats().hits, cache.stats().misses, cache.stats().waits], [1, 1, 1]);
  await cache.close();
});

test('after a failed compile the jobs waiting compile at once; after one given up, one of them; a compile too large is not waited for', { skip }, async () => {
  const cache = cacheOf(8 * 4 * TREE_ENTRY_BYTES);
  const failing = await cache.take('f');
  const waiting = [cache.take('f'), cache.take('f')];
  assert.deepEqual(await Promise.all(waiting.map(pending)), [true, true]);
  failing.turn!('failed');
  const lookups = await Promise.all(waiting);
  assert.deepEqual(lookups.map((lookup) => [lookup.kept, typeof lookup.turn]), [[undefined, 'function'], [undefined, 'function']]);
  assert.deepEqual([cache.stats().waits, cache.stats().misses], [2, 3]);
  // Neither registered a turn: the next take does not wait for them.
  const next = await cache.take('f');
  assert.ok(next.turn);
  next.turn('failed');

  // Given up (its job cancelled): the first in line takes the turn, the other waits for it.
  const cancelled = await cache.take('g');
  const inLine = [cache.take('g'), cache.take('g')];
  cancelled.turn!('given_up');
  const nextInLine = await inLine[0]!;
  assert.ok(nextInLine.turn);
  assert.equal(await pending(inLine[1]!), true, 'the other waits for the new turn');
  (await cache.keep('g', tree({ prog: 'g' }), result()))!.release();
  nextInLine.turn!('kept');
  const last = await inLine[1]!;
  assert.ok(last.kept);
  last.kept.release();

  // Too large to keep: remembered, and its jobs compile side by side.
  const large = await cache.take('l');
  assert.equal(await cache.keep('l', tree({ prog: 'x'.repeat(4 * TREE_ENTRY_BYTES) }), result()), undefined);
  const beside = cache.take('l');
  assert.equal(await pending(beside), true, 'waits for the turn under way, not knowing it yet');
  large.turn!('kept');
  assert.deepEqual([(await beside).kept, typeof (await beside).turn], [undefined, 'function']);
  const after = await cache.take('l');
  assert.ok(after.turn);
  assert.equal(await pending(cache.take('l')), false, 'no turn was registered: the next does not wait');
  // Nor is it copied again, pushing out what is kept to make room for the copy: with the cache
  // near full (g and seven entries of a share each), a copy would push g out.
  for (let i = 0; i < 7; i++) (await cache.keep(`e${i}`, tree({ prog: 'x'.repeat(2 * TREE_ENTRY_BYTES) }), result()))!.release();
  assert.equal(cache.stats().entries, 8);
  const notKept = cache.stats().notKept;
  assert.equal(await cache.keep('l', tree({ prog: 'x'.repeat(4 * TREE_ENTRY_BYTES) }), result()), undefined);
  assert.deepEqual([cache.stats().notKept, cache.stats().entries], [notKept + 1, 8], 'g and the seven stay');
  await cache.close();
});

test('an abort ends a wait: a turn the caller does not take, the listener removed', { skip }, async () => {
  const cache = cacheOf(MiB);
  const first = await cache.take('k');
  const abort = new AbortController();
  const waiting = cache.take('k', abort.signal);
  assert.equal(await pending(waiting), true);
  assert.equal(getEventListeners(abort.signal, 'abort').length, 1);
  abort.abort();
  const lookup = await waiting;
  assert.deepEqual([lookup.kept, typeof lookup.turn], [undefined, 'function']);
  assert.equal(getEventListeners(abort.signal, 'abort').length, 0);
  // Already aborted: no wait, and no turn registered that others would wait for.
  assert.equal(await pending(cache.take('k', abort.signal)), false);
  first.turn!('failed');
  const quiet = new AbortController();
  const second = await cache.take('q', quiet.signal);
  const third = cache.take('q', quiet.signal);
  second.turn!('failed');
  await third;
  assert.equal(getEventListeners(quiet.signal, 'abort').length, 0, 'a wait that ended without an abort leaves no listener');
  await cache.close();
});

test('at most MAX_KEPT_COMPILES are kept, whatever their bytes', { skip }, async () => {
  const cache = cacheOf(1 << 30);
  const from = tree({});
  for (let i = 0; i <= MAX_KEPT_COMPILES; i++) (await cache.keep(`k${i}`, from, result()))!.release();
  assert.equal(cache.stats().entries, MAX_KEPT_COMPILES);
  assert.equal(await taken(cache, 'k0'), undefined, 'the least recently used went');
  assert.ok(await taken(cache, `k${MAX_KEPT_COMPILES}`));
  await cache.close();
});

test("a compile not kept for the host's reason (its filesystem full) is reported once per spell of its code; one too large is not", { skip }, async (t) => {
  const dir = join(scratch, `cache-${++trees}`);
  mkdirSync(dir);
  // A tmpfs of 64 KiB under the scratch dir: a 256 KiB file cannot be copied into it (ENOSPC).
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
  t.after(() => execFileSync('umount', [dir]));
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const reported: unknown[] = [];
  const cache = new CompileCache(join(dir, 'judge-compiles'), 64 * MiB, () => 'layers-1', (err) => reported.push(err));
  const large = tree({ prog: 'x'.repeat(256 * 1024) });
  assert.equal(await cache.keep('a', large, result()), undefined);
  assert.equal(reported.length, 1);
  assert.equal((reported[0] as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.equal(await cache.keep('b', large, result()), undefined);
  assert.ok(await cache.keep('small', tree({ prog: 'x' }), result()), 'a compile that fits is kept meanwhile');
  t.mock.timers.tick(KEEP_FAILURE_QUIET_MS - 1);
  assert.equal(await cache.keep('c', large, result()), undefined);
  assert.equal(reported.length, 1, 'the same spell: each failure came within the quiet time of the one before');
  t.mock.timers.tick(KEEP_FAILURE_QUIET_MS);
  assert.equal(await cache.keep('d', large, result()), undefined);
  assert.equal(reported.length, 2, 'a new spell after the quiet time');
  // Above an entry's share of the budget: the compile's own size, said by notKept alone.
  const small = new CompileCache(join(dir, 'small-budget'), 8 * 8 * TREE_ENTRY_BYTES, () => 'layers-1', (err) => reported.push(err));
  assert.equal(await small.keep('big', tree({ prog: 'x'.repeat(16 * TREE_ENTRY_BYTES) }), result()), undefined);
  assert.equal(reported.length, 2);
  assert.deepEqual([cache.stats().notKept, small.stats().notKept], [4, 1]);
  await cache.close();
  await small.close();
});
