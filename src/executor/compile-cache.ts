// A worker's cache of judge programs' compiles. An online judge sends the same checker or
// interactor with every submission to a problem, and a testlib checker in C++ takes seconds of CPU
// to compile: compiled once per worker, its work dir is kept here and each later job's tests copy
// it from here, as they would from the compile's own slot. go-judge leaves this to its callers
// (copyOutCached, fileId); here the key is the compile itself, so a caller does nothing.
//
// The key holds everything a compile's outcome depends on: the runtime's compile command and
// environment, the image's layers (a rebuild is a new key), the command's arguments, the limits,
// and every file's name and content. Only a compile that ended ok is kept. Entries live under the
// pool owner's state dir (removed at a clean shutdown, reclaimed from a dead owner with its slots),
// owned by root, which no sandbox sees. Their bytes stay within the budget, the least recently
// used going first: an entry's files as written (copyWorkDir's count: a block for each entry at
// least) and its compile's output; a copy under way holds the most an entry may take (an eighth
// of the budget) until its size is known. An entry a job is copying from is taken out of the
// index when evicted and removed once that job is done with it.
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runtime } from '../images/types.js';
import type { Limits } from '../sandbox/types.js';
import { copyWorkDir, TREE_ENTRY_BYTES, TreeLimitError } from './files.js';
import type { SourceFile, StageResult } from './types.js';

/** The most of the budget one kept compile may take, so that one job's compile does not push out
 * every other problem's. */
export const ENTRY_SHARE_OF_BUDGET = 1 / 8;

/** Most compiles kept at once, whatever their bytes: each has its result in memory besides its
 * files on disk. */
export const MAX_KEPT_COMPILES = 4096;

/** How many keys of compiles too large to keep are remembered (CompileCache.take). */
export const TOO_LARGE_KEYS_KEPT = 1024;

/** Most directory entries (files, dirs, links) a kept compile may have: a compiled program is a
 * few files; a tree of thousands is left by a compile that was not making one. */
export const MAX_CACHED_TREE_ENTRIES = 4096;

/** A compile that could not be kept for the host's reason (its copy failed: the state dir's
 * filesystem full, say) is reported once per spell of such failures of one code, a spell ending
 * after this long without one: a full disk fails every keep until it is freed. */
export const KEEP_FAILURE_QUIET_MS = 10 * 60_000;

/** A kept compile, held by one job until it calls release(). */
export interface CachedCompile {
  /** The compile's work dir as it left it (host path; never given to a sandbox). */
  readonly dir: string;
  /** The compile's own result, as the job that ran it got it. */
  readonly result: StageResult;
  release(): void;
}

/** A worker's kept compiles, advertised with its heartbeat (cellblock_judge_compiles). */
export interface CompileCacheStats {
  entries: number;
  /** The entries' bytes, and those held for copies under way. */
  bytes: number;
  hits: number;
  misses: number;
  /** Takes that waited for the same compile in another job (then a hit, or a miss where it kept
   * nothing). */
  waits: number;
  /** Compiles that ended ok and were not kept: above an entry's share of the budget, or the copy
   * failed. */
  notKept: number;
}

/** How a turn to compile ended: kept; failed (the compiler's own error, or an ok compile that
 * could not be kept: the next would end alike, so the jobs waiting compile at once); or given up
 * (a limit hit, its job cancelled, its sandbox failed: the next job in line compiles). */
export type TurnOutcome = 'kept' | 'failed' | 'given_up';

/** What take() found: a kept compile, or the caller's turn to compile (CompileCache.take). */
export type CompileLookup = { kept: CachedCompile; turn?: undefined } | { kept?: undefined; turn: (outcome?: TurnOutcome) => void };

/** `promise`'s value, or undefined as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.resolve(undefined);
  let onAbort!: () => void;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

interface Entry {
  key: string;
  dir: string;
  result: StageResult;
  bytes: number;
  /** Jobs copying from it now. */
  holders: number;
  /** Out of the index: removed once no job holds it. */
  evicted: boolean;
}

/** What a compile's outcome depends on, besides its image's layers (CompileCache's `imageBuild`). */
export interface CompileKeyParts {
  runtime: Runtime;
  argv: string[];
  limits: Limits;
  files: SourceFile[];
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The key of a compile on an image of this build (the layers a compile slot would have now). */
function compileKey(parts: CompileKeyParts, imageBuild: string): string {
  const { runtime } = parts;
  return sha256(
    JSON.stringify({
      runtime: runtime.id,
      image: runtime.image,
      build: imageBuild,
      compile: runtime.compile,
      env: runtime.env,
      argv: parts.argv,
      limits: parts.limits,
      files: parts.files.map((file) => [file.name, sha256(file.content)]),
    }),
  );
}

export class CompileCache {
  /** Least recently used first (a Map keeps insertion order; a hit moves its entry to the end). */
  private readonly entries = new Map<string, Entry>();
  private readonly removals = new Set<Promise<void>>();
  /** Compiles under way by key, each resolved with how it ended (take()'s turns). */
  private readonly compiling = new Map<string, Promise<TurnOutcome>>();
  /** Keys of compiles that were too large to keep, the latest TOO_LARGE_KEYS_KEPT: their jobs
   * neither wait for one another nor copy them again, each compiling its own. */
  private readonly tooLarge = new Set<string>();
  private readonly maxEntryBytes: number;
  private bytes = 0;
  private seq = 0;
  private readonly counts = { hits: 0, misses: 0, waits: 0, notKept: 0 };
  /** By error code: when a keep last failed for the host's reason (a spell of failures goes on
   * while none is KEEP_FAILURE_QUIET_MS after the one before). */
  private readonly keepFailedAtMs = new Map<string, number>();

  /**
   * @param dir a directory of this process's own (made here; what is in it is this cache's)
   * @param maxBytes the budget: the bytes of the kept files and outputs, all entries together
   * @param imageBuild names the build of an image that a compile slot would have now (its layers)
   * @param onKeepFailed told of a compile not kept for the host's reason (its copy failed), once
   *   per spell of such failures of one code (KEEP_FAILURE_QUIET_MS); never of one too large
   */
  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly imageBuild: (image: string) => string,
    private readonly onKeepFailed: (err: unknown) => void = () => {},
  ) {
    this.maxEntryBytes = Math.floor(maxBytes * ENTRY_SHARE_OF_BUDGET);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  key(parts: CompileKeyParts): string {
    return compileKey(parts, this.imageBuild(parts.runtime.image));
  }

  /** The kept compile of this key, held until its release(); else the caller's turn to compile it,
   * which it ends with how its compile went (turn(outcome)). Where another job of this worker is
   * compiling the same now, this waits for that turn (a contest's first submissions to a problem
   * compile its checker once, not once each) and takes what it kept; after a compile that failed
   * (the compiler's own error, or not keepable), each waiting job compiles on its own, at once;
   * after one that was given up (a limit hit, its job cancelled, its sandbox failed, or kept and
   * already pushed out), one of them takes the next turn and the others wait again. A compile too large to keep is not waited for (TOO_LARGE_KEYS_KEPT). An
   * abort of `signal` ends the wait: a turn, which the caller then does not take. */
  async take(key: string, signal?: AbortSignal): Promise<CompileLookup> {
    const ownTurn = { turn: () => undefined };
    for (;;) {
      if (signal?.aborted) return ownTurn;
      const entry = this.entries.get(key);
      if (entry) {
        this.counts.hits++;
        return { kept: this.hold(this.touch(entry)) };
      }
      const compiling = this.compiling.get(key);
      if (!compiling) break;
      this.counts.waits++;
      const outcome = await untilAborted(compiling, signal);
      if (outcome === 'failed') {
        this.counts.misses++;
        return ownTurn;
      }
    }
    this.counts.misses++;
    if (this.tooLarge.has(key)) return ownTurn;
    let end!: (outcome: TurnOutcome) => void;
    const turn = new Promise<TurnOutcome>((resolve) => (end = resolve));
    this.compiling.set(key, turn);
    return {
      turn: (outcome = 'given_up') => {
        if (this.compiling.get(key) === turn) this.compiling.delete(key);
        end(outcome);
      },
    };
  }

  /** Keeps a copy of the compile's work dir `fromDir` (whose processes have all ended) with its
   * result, and returns it held as take() would; undefined where it was not kept (more bytes than
   * an entry's share of the budget, more than MAX_CACHED_TREE_ENTRIES entries, or the copy failed:
   * the job goes on with its compile's slot). */
  async keep(key: string, fromDir: string, result: StageResult): Promise<CachedCompile | undefined> {
    const fixedBytes = TREE_ENTRY_BYTES + result.stdout.byteLength + result.stderr.byteLength;
    // Known too large: not copied again (nor other problems' compiles pushed out for room).
    if (this.tooLarge.has(key) || fixedBytes > this.maxEntryBytes) {
      this.notKept(key, true);
      return undefined;
    }
    // The most it may take, held while it is copied, so that copies at once stay in the budget.
    this.evictFor(this.maxEntryBytes);
    this.bytes += this.maxEntryBytes;
    const dir = join(this.dir, `${++this.seq}`);
    let treeBytes: number;
    try {
      mkdirSync(`${dir}.new`, { mode: 0o700 });
      treeBytes = await copyWorkDir(fromDir, `${dir}.new`, { uid: 0, gid: 0 }, { maxBytes: this.maxEntryBytes - fixedBytes, maxEntries: MAX_CACHED_TREE_ENTRIES });
      renameSync(`${dir}.new`, dir);
    } catch (err) {
      // Above its share, or the host's own failure (its disk full): not kept, and the next job that
      // sends it compiles it again.
      this.removeDir(`${dir}.new`);
      const tooLarge = err instanceof TreeLimitError;
      this.notKept(key, tooLarge);
      if (!tooLarge) this.keepFailed(err);
      return undefined;
    } finally {
      this.bytes -= this.maxEntryBytes;
    }
    const kept = this.entries.get(key);
    if (kept) {
      // Another job kept the same compile while this one was copied: one copy is enough.
      this.removeDir(dir);
      return this.hold(this.touch(kept));
    }
    const entry: Entry = { key, dir, result, bytes: treeBytes + fixedBytes, holders: 0, evicted: false };
    this.evictFor(entry.bytes);
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    return this.hold(entry);
  }

  stats(): CompileCacheStats {
    return { entries: this.entries.size, bytes: this.bytes, ...this.counts };
  }

  /** Waits for the removals under way (the directory itself goes with its owner's). */
  async close(): Promise<void> {
    while (this.removals.size > 0) await Promise.allSettled([...this.removals]);
  }

  private notKept(key: string, tooLarge: boolean): void {
    this.counts.notKept++;
    if (!tooLarge) return;
    this.tooLarge.delete(key);
    this.tooLarge.add(key);
    if (this.tooLarge.size > TOO_LARGE_KEYS_KEPT) this.tooLarge.delete(this.tooLarge.values().next().value!);
  }

  /** A copy failed for the host's reason: said once per spell of its code. */
  private keepFailed(err: unknown): void {
    const code = String((err as { code?: unknown } | null)?.code ?? (err as Error | null)?.name ?? 'unknown');
    const nowMs = Date.now();
    const lastMs = this.keepFailedAtMs.get(code);
    this.keepFailedAtMs.set(code, nowMs);
    if (lastMs === undefined || nowMs - lastMs >= KEEP_FAILURE_QUIET_MS) this.onKeepFailed(err);
  }

  private touch(entry: Entry): Entry {
    this.entries.delete(entry.key);
    this.entries.set(entry.key, entry);
    return entry;
  }

  private hold(entry: Entry): CachedCompile {
    entry.holders++;
    let released = false;
    return {
      dir: entry.dir,
      result: entry.result,
      release: () => {
        if (released) return;
        released = true;
        entry.holders--;
        if (entry.evicted && entry.holders === 0) this.removeDir(entry.dir);
      },
    };
  }

  private evictFor(bytes: number): void {
    for (const entry of this.entries.values()) {
      if (this.bytes + bytes <= this.maxBytes && this.entries.size < MAX_KEPT_COMPILES) return;
      this.entries.delete(entry.key);
      this.bytes -= entry.bytes;
      entry.evicted = true;
      if (entry.holders === 0) this.removeDir(entry.dir);
    }
  }

  private removeDir(dir: string): void {
    const removal = rm(dir, { recursive: true, force: true })
      .catch(() => undefined)
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }
}
