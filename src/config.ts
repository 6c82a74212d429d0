// The service's configuration, read once from the environment. Every knob has a unit in its
// name and a default that works on one machine; a malformed value is a ConfigError at start-up,
// never a surprise later.
import os from 'node:os';
import path from 'node:path';
import { dataDirFromEnv } from './images/paths.js';
import { MiB } from './units.js';
import { jobsAtOnce } from './queue/background-lane.js';
import { checkSubmission, MAX_LIST_ITEMS, outputAboveMaximum, type CheckedSubmission } from './executor/check.js';
import type { Runtime } from './images/types.js';
import { CGROUP_BASES, type CgroupBase } from './sandbox/types.js';
import { DEFAULT_WEBHOOK_DENY, OutboundPolicy, parseSubnet } from './queue/outbound.js';
import { DirectoryError, makeDirectory } from './make-directory.js';
import { isShortMappedNetwork, wholeFamilies } from './api/trusted-proxies.js';
import { COMPILED_JOB_SLOTS, MOST_SLOTS_PER_JOB } from './executor/slot-keys.js';
import { jobsWithinOpenFiles } from './executor/descriptors.js';
import { SANDBOX_UID } from './pool/root.js';
import { SANDBOX_UID_COUNT, UIDS_KEPT_FREE } from './pool/uid-leases.js';
import { DEFAULT_REDIS_APPEND_FSYNC, REDIS_APPEND_FSYNC_POLICIES, type RedisAppendFsync } from './queue/redis-server.js';

export interface ApiKey {
  key: string;
  /** Requests per `rateLimitWindowMs` allowed for this key. */
  requestsPerWindow: number;
  /** Live sockets this key may hold open at once on all API processes together; absent: the server's
   * maxLiveSessionsPerClient. A playground whose pages all connect with tickets of its one key
   * needs room for all of them. */
  maxLiveSessions?: number;
}

export interface Config {
  /** Redis to meet in; when absent, `cellblock start` runs a private redis-server. */
  redisUrl?: string;
  /** Key prefix of every Redis key (BullMQ's and ours), so that several deployments share a Redis. */
  queuePrefix: string;
  host: string;
  port: number;
  /** Built images, pool state, and (for `cellblock start`) the private Redis's data. */
  dataDir: string;
  /** Where a worker's pool keeps its slots; a dead worker's leftovers are reclaimed from here. */
  poolStateDir: string;
  /** The private redis-server's data (`cellblock start` without a Redis URL). */
  redisDataDir: string;
  /**
   * The private redis-server's appendfsync. Either way a crash of Redis or of cellblock loses no
   * accepted job (Redis write()s the AOF before replying); "everysec" may lose the last second of
   * them to a machine crash or power loss, "always" loses none and flushes the disk on every write.
   */
  redisAppendFsync: RedisAppendFsync;
  /** Where a worker's cgroups go: under each hierarchy's root, or under the cgroup it was started
   * in, delegated to it (systemd's Delegate=yes), so that the unit's limits cover its sandboxes. */
  cgroupBase: CgroupBase;

  /** Worker processes `cellblock worker` / `cellblock start` run on this machine. */
  workerProcesses: number;
  /** Those of the settings of the jobs at once that were set, not left to their defaults: the
   * ones checkSandboxUids may name. */
  workerSettingsSet: WorkerSetting[];
  /** Jobs one worker process runs at once, not counting long jobs (see backgroundAfterMs). */
  workerConcurrency: number;
  /** A job running longer than this (wall time) is long: it frees its slot for the next job
   * (docs/theory-of-operation.md, "Long runs and the background"). 0: never. */
  backgroundAfterMs: number;
  /** Long jobs one worker process runs beyond workerConcurrency. */
  backgroundSlots: number;
  /** A program that has used this much CPU time goes to the background CPU weight. 0: never. */
  backgroundAfterCpuMs: number;
  /** Most containers a worker keeps ready per image (the pool grows to it as misses show demand). */
  poolMaxReady: number;
  /** Containers a worker prepares at once in the background (refilling its pools). */
  poolRefillConcurrency: number;
  /** How long a finished job (and its result) stays readable. */
  resultTtlSeconds: number;
  /** BullMQ lock on an active job; a worker that stops renewing it for this long is presumed dead. */
  lockDurationMs: number;
  /** How often workers look for jobs whose lock expired (stalled jobs): DEFAULT_STALLED_INTERVAL_MS,
   * stalledIntervalFor. */
  stalledIntervalMs: number;
  /** Stalls a job survives before it is failed: 1 = retried once by another worker. */
  maxStalledCount: number;
  /** A worker's liveness key expires this long after its last heartbeat. */
  workerHeartbeatTtlMs: number;
  /** Grace on SIGTERM for running jobs to finish before they are cancelled. */
  shutdownGraceMs: number;

  /** Jobs waiting beyond this many answer 429 with Retry-After. */
  maxQueuedJobs: number;
  /** Longest `?wait=true` the API holds a request. */
  maxWaitMs: number;
  /** Longest a request may take to arrive whole (its headers and body; not its answer). */
  requestTimeoutMs: number;
  bodyLimitBytes: number;
  maxFiles: number;
  maxTests: number;
  maxBatchJobs: number;
  maxArgs: number;
  /** Most output one job may store: its stages' outputBytes limits added up (the compile, each run). */
  maxJobOutputBytes: number;
  /** A worker's budget for the judge programs' compiles it keeps for later jobs; 0 keeps none. */
  judgeCompileCacheBytes: number;
  /** Live job sockets one client (API key, or address without keys) may hold open at once on all
   * API processes together (counted in Redis); a key's own maxLiveSessions takes its place. */
  maxLiveSessionsPerClient: number;

  webhookAttempts: number;
  webhookTimeoutMs: number;
  webhookBackoffMs: number;
  /** Stored bytes of job records a worker's notifier sends at once (WebhookPolicy.memoryBytes). */
  webhookMemoryBytes: number;
  /** Where /v1 webhooks and Judge0 callbacks may be sent (src/queue/outbound.ts). */
  webhookDestinations: OutboundPolicy;

  /** Networks of the balancers or proxies in front of the API, whose X-Forwarded-For is believed:
   * a request from one of them counts as from the address it forwarded for (the rate limit, the
   * live socket cap and the access log tell clients apart by it). Empty: the peer's address. */
  trustedProxies: string[];
  /** Origins whose browser pages may call the API (CORS); `*` any; empty: none (no CORS headers). */
  corsOrigins: string[];
  /** Empty: the API is open. Otherwise every /v1 (and compat) request needs one of these keys. */
  apiKeys: ApiKey[];
  rateLimitWindowMs: number;
  /** Requests per window for anonymous callers (when keys are off) and keys without their own. */
  defaultRequestsPerWindow: number;

  logLevel: string;
}

/** The settings of how many jobs a machine's worker processes run at once (checkSandboxUids). */
const WORKER_SETTINGS = ['CELLBLOCK_WORKER_PROCESSES', 'CELLBLOCK_WORKER_CONCURRENCY', 'CELLBLOCK_BACKGROUND_SLOTS'] as const;
export type WorkerSetting = (typeof WORKER_SETTINGS)[number];

/** What the default of CELLBLOCK_WORKER_CONCURRENCY depends on besides the cores. */
export interface WorkerShape {
  workerProcesses: number;
  backgroundAfterMs: number;
  /** CELLBLOCK_BACKGROUND_SLOTS when set; unset, the lane has as many slots as the worker. */
  backgroundSlots?: number;
  /** The machine's cores: os.availableParallelism() unless given (a test's). */
  cores?: number;
  /** The worker process's hard open files limit (RLIMIT_NOFILE); unbounded where not given. */
  openFilesLimit?: number;
  /** CELLBLOCK_POOL_REFILL_CONCURRENCY: containers prepared at once, which hold descriptors too. */
  poolRefillConcurrency?: number;
}

/**
 * Jobs per worker process when CELLBLOCK_WORKER_CONCURRENCY is unset: two per core. A sandboxed job
 * often waits (on its own I/O, on the cgroup's CPU throttle, on a sleeping or wall-clock-limited
 * program), so one slot per core leaves cores idle; and a hostile job holds its slot up to its
 * limits, so with only a slot per core two hostile jobs starve every benign one behind them.
 * Never more than the machine's sandbox uids give every job its MOST_SLOTS_PER_JOB, beside the
 * uids the other worker processes may keep given back (UIDS_KEPT_FREE each, out of this one's
 * reach: it takes back only its own), so that the defaults start on any machine without a warning
 * (checkSandboxUids; past 64 cores with one worker process and its lane, past fewer with more
 * processes): a default is not a setting to refuse. Nor more than a worker process's hard open
 * files limit holds (jobsWithinOpenFiles; 13 cores and their lane under 4096, 3 under 1024), which
 * bin/host-limits.ts's checkOpenFiles refuses; the start-up says when the limit lowered it
 * (openFilesCapWarning). At least 1, which checkSandboxUids warns of or refuses only where the
 * processes alone are too many, and checkOpenFiles refuses only where not one job fits. The ready
 * slots are not counted: a worker destroys its own idle ones for its jobs' slots (another's it
 * cannot: checkSandboxUids), and keeps what the open files limit leaves (openFilesPlan).
 */
export function defaultWorkerConcurrency(shape: WorkerShape = { workerProcesses: 1, backgroundAfterMs: DEFAULT_BACKGROUND_AFTER_MS }): number {
  const processes = Math.max(1, shape.workerProcesses);
  const othersKeptFree = (processes - 1) * UIDS_KEPT_FREE;
  const jobsWithinUids = Math.floor(Math.max(0, SANDBOX_UID_COUNT - othersKeptFree) / MOST_SLOTS_PER_JOB / processes);
  const jobsWithinLimit = jobsWithinOpenFiles(shape.openFilesLimit ?? Number.POSITIVE_INFINITY, shape.poolRefillConcurrency ?? DEFAULT_POOL_REFILL_CONCURRENCY);
  const jobs = Math.min(jobsWithinUids, jobsWithinLimit);
  const lane = shape.backgroundAfterMs > 0;
  const slotsWithin = !lane ? jobs : shape.backgroundSlots === undefined ? Math.floor(jobs / 2) : jobs - shape.backgroundSlots;
  return Math.max(1, Math.min(2 * (shape.cores ?? os.availableParallelism()), slotsWithin));
}

/** A warning where the hard open files limit `openFilesLimit` lowered CELLBLOCK_WORKER_CONCURRENCY's
 * default (it unset): the limit, the default without it, and the cap; undefined otherwise. */
export function openFilesCapWarning(
  config: Pick<Config, 'workerProcesses' | 'workerConcurrency' | 'backgroundSlots' | 'backgroundAfterMs' | 'poolRefillConcurrency' | 'workerSettingsSet'>,
  openFilesLimit: number,
): string | undefined {
  const { workerProcesses, backgroundAfterMs, workerSettingsSet } = config;
  if (workerSettingsSet.includes('CELLBLOCK_WORKER_CONCURRENCY')) return undefined;
  const laneSet = workerSettingsSet.includes('CELLBLOCK_BACKGROUND_SLOTS') ? { backgroundSlots: config.backgroundSlots } : {};
  const uncapped = defaultWorkerConcurrency({ workerProcesses, backgroundAfterMs, ...laneSet });
  if (config.workerConcurrency >= uncapped) return undefined;
  return `the open files limit (RLIMIT_NOFILE, hard) of this process, ${openFilesLimit}, holds fewer jobs at once than the default CELLBLOCK_WORKER_CONCURRENCY ${uncapped} (two per core) would run: ${describeJobsAtOnce(config)} here, what it holds; raise it (systemd: LimitNOFILE=; a shell, as root: ulimit -Hn N before the command) to run more`;
}

/**
 * When a job counts as long (wall time), and when a program goes to the background CPU weight
 * (CPU time). Well above a typical submission's run (a hello world takes 20-30 ms here, a C
 * compile ~150 ms of CPU), well below the default limits (2 s of CPU, 5 s of wall time) that a
 * runaway program runs into.
 */
export const DEFAULT_BACKGROUND_AFTER_MS = 250;

/** Background preparations of a worker's pool at once. Two, because a preparation mostly waits
 * (on the mount agent, on init's setup), so two overlap; one at a time let the pool run dry in a
 * hostile closed loop when a fork bomb still slowed every cgroup attach (before the `tasks` attach,
 * v1.ts), and two cost a python hello closed loop nothing measurable. */
export const DEFAULT_POOL_REFILL_CONCURRENCY = 2;

/** A job's stored output at most (stdout and stderr of every stage): the worker holds it in memory
 * and Redis stores it, base64, for the result's TTL. 30 tests of 16 MiB each made a 2 GB worker and
 * a result too long for a JavaScript string; the default runtimes' own limits (1 MiB per run, up to
 * CELLBLOCK_MAX_TESTS = 100 runs after a compile) stay within it. */
export const DEFAULT_MAX_JOB_OUTPUT_BYTES = 128 * MiB;

/** A worker's notifier sends webhooks for at most this many stored bytes of job records at once
 * (each attempt holds its record, parsed, and its body: about three times its stored size): two
 * jobs at the default output cap, thousands of ordinary ones. */
export const DEFAULT_WEBHOOK_MEMORY_BYTES = 256 * MiB;

/** A worker's budget for the judge programs' compiles it keeps (src/executor/compile-cache.ts): a
 * testlib checker compiled by g++ is ~1-2 MiB with its sources, so a hundred problems' checkers. */
export const DEFAULT_JUDGE_COMPILE_CACHE_BYTES = 256 * MiB;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
  }
}

type Env = Record<string, string | undefined>;

/** pino's levels, and `silent`. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function oneOf<T extends string>(env: Env, variable: string, choices: readonly T[], fallback: T): T {
  const raw = env[variable]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!(choices as readonly string[]).includes(raw)) {
    throw new ConfigError(variable, `expected one of ${choices.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

/** Node's timers take at most 2^31 - 1 ms and fire after 1 ms for anything longer (a grace of
 * 3e9 ms would interrupt jobs at once): every `*_MS` setting is bounded by it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function integer(env: Env, variable: string, fallback: number, minimum = 0, maximumAsked = Number.MAX_SAFE_INTEGER): number {
  const maximum = variable.endsWith('_MS') ? Math.min(maximumAsked, MAX_TIMER_MS) : maximumAsked;
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(variable, `expected a whole number, got "${raw}"`);
  const value = Number(raw.trim());
  if (!Number.isSafeInteger(value) || value < minimum || value > maximum) {
    // Above the maximum (one the variable's row may not state: 2^53 - 1), the maximum is said.
    const range = value >= minimum || maximum !== Number.MAX_SAFE_INTEGER ? `from ${minimum} to ${maximum}` : `>= ${minimum}`;
    throw new ConfigError(variable, `expected a whole number ${range}, got "${raw}"`);
  }
  return value;
}

/** An absolute directory path; `mountOption`: one that goes into overlayfs's mount options (the
 * images' layers, the pool's roots), where ':' and ',' separate values. */
function directory(env: Env, variable: string, fallback: string, options: { mountOption?: boolean } = {}): string {
  const dir = env[variable]?.trim() || fallback;
  if (!path.isAbsolute(dir)) throw new ConfigError(variable, `expected an absolute path, got "${dir}"`);
  if (options.mountOption && /[:,\s]/.test(dir)) {
    throw new ConfigError(variable, `may not contain ':', ',' or white space (it goes into overlayfs's mount options), got "${dir}"`);
  }
  return dir;
}

/** Makes the directory a setting names, or finds it there, usable (makeDirectory): checked by the
 * command before anything starts, so that a bad path is refused in one line naming `variable`. */
export function makeSettingDirectory(variable: string, dir: string, mode: number): void {
  try {
    makeDirectory(dir, mode);
  } catch (error) {
    if (error instanceof DirectoryError) throw new ConfigError(variable, error.message);
    throw error;
  }
}

/** `url` for a message, whether or not it parses: what precedes its last `@` (user and password)
 * masked, and so are its query parameters' values and its fragment (ioredis takes a query's
 * `password=` too). */
export function withoutCredentials(url: string): string {
  return url
    .replace(/^((?:[a-z][a-z0-9+.-]*:)?\/\/)?.*@/is, (_, scheme: string | undefined) => `${scheme ?? ''}***@`)
    .replace(/#.*$/s, '#***')
    .replace(/([?&][^=&#]*)=[^&#]*/g, '$1=***');
}

/** The highest database index: Redis's `databases` is at most INT_MAX (its config.c), and an
 * index is below it. Whether this Redis has that many (16 by default) only it can say. */
const MAX_REDIS_DB = 2 ** 31 - 2;

/** Query parameters of a Redis URL that we take. ioredis (utils parseURL) makes every parameter
 * an option of its own name, a string: one it has no option of is ignored without a word, one
 * we set ourselves (createRedis) is overridden, and others would change the connection behind
 * this setting's back. `family` (4 or 6) picks the address family a name is resolved to. */
const REDIS_URL_PARAMETERS: Record<string, readonly string[]> = { family: ['4', '6'] };

/** `redis://[user:password@]host[:port][/db]` or `rediss://...`, whole: what ioredis would
 * otherwise take as it is (a database "abc" became `SELECT NaN` at the first command; a port
 * 99999 a TypeError with ioredis's stack). A message never shows the credentials. */
function redisUrlSetting(env: Env, variable: string): string | undefined {
  const raw = env[variable]?.trim();
  if (!raw) return undefined;
  const refused = (reason: string) => new ConfigError(variable, `${reason}, got "${withoutCredentials(raw)}"`);
  const form = 'redis://[user:password@]host[:port][/db] or rediss://...';
  if (!/^rediss?:\/\//.test(raw)) throw refused(`expected ${form}`);
  // Told apart before the URL is parsed, which says only "Invalid URL": the host and port, after
  // the credentials (up to the last `@`).
  const hostAndAfter = raw.slice(raw.lastIndexOf('@') + 1).replace(/^rediss?:\/\//, '');
  if (/^(?:[:/?#]|$)/.test(hostAndAfter)) throw refused(`no host: expected ${form}`);
  const port = /^(?:\[[^\]]*\]|[^:/?#]*):(\d+)(?:[/?#]|$)/.exec(hostAndAfter)?.[1];
  if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65_535)) throw refused(`port ${port}: expected a port from 1 to 65535`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refused(`not a URL of the form ${form}`);
  }
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !(/^\d+$/.test(db) && Number(db) <= MAX_REDIS_DB)) {
    throw refused(`database "${db}": expected a whole number from 0 to ${MAX_REDIS_DB} after the host (redis://host:port/db)`);
  }
  if (url.hash !== '') throw refused('a fragment (#...) means nothing to Redis');
  for (const [name, value] of url.searchParams) {
    const taken = REDIS_URL_PARAMETERS[name];
    if (taken === undefined) {
      throw refused(`query parameter "${name}" is not taken: the only one is family=4 or 6 (the user and password go before the host, the database after it)`);
    }
    if (!taken.includes(value)) throw refused(`query parameter "${name}": expected ${name}=${taken.join(' or ')}`);
  }
  return raw;
}

/** `10.0.0.0/8,fd00::/8,192.0.2.7`; unset or empty: `fallback`; `none`: no network, unless
 * `noneRefused` says why it may not be written; a /0 network (every address), or networks that
 * together hold every address of a family as the proxy check counts them (wholeFamilies:
 * `0.0.0.0/1,128.0.0.0/1`, `::ffff:0.0.0.0/96`), unless `everyAddressRefused` says why they may
 * not be written. */
function networks(env: Env, variable: string, fallback: readonly string[], noneRefused?: string, everyAddressRefused?: string): string[] {
  const raw = env[variable]?.trim();
  if (raw === undefined || raw === '') return [...fallback];
  if (raw === 'none') {
    if (noneRefused !== undefined) throw new ConfigError(variable, noneRefused);
    return [];
  }
  const entries = raw.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    let prefix: number;
    try {
      ({ prefix } = parseSubnet(entry));
    } catch (error) {
      throw new ConfigError(variable, (error as Error).message);
    }
    if (prefix === 0 && everyAddressRefused !== undefined) throw new ConfigError(variable, `"${entry}" is every address: ${everyAddressRefused}`);
  }
  const [whole] = everyAddressRefused === undefined ? [] : wholeFamilies(entries);
  if (whole !== undefined) {
    const named = whole.entries.map((entry) => `"${entry}"`).join(', ');
    const mapped = whole.mapped ? ' (an IPv4-mapped network, ::ffff:0.0.0.0/96 or within it, counts as the IPv4 addresses it maps)' : '';
    throw new ConfigError(variable, `${named} ${whole.entries.length === 1 ? 'is' : 'together are'} every ${whole.family} address${mapped}: ${everyAddressRefused}`);
  }
  return entries;
}

/** CELLBLOCK_TRUSTED_PROXIES: networks(), refusing besides an entry the proxy check would match no
 * peer against (an IPv4-mapped network shorter than /96), which trusts no proxy it was meant for. */
function trustedProxies(env: Env): string[] {
  const variable = 'CELLBLOCK_TRUSTED_PROXIES';
  const entries = networks(env, variable, [], undefined, 'any client could then name any address in X-Forwarded-For; list only your balancers and proxies');
  const unmatched = entries.find(isShortMappedNetwork);
  if (unmatched !== undefined) {
    throw new ConfigError(
      variable,
      `"${unmatched}" is an IPv4-mapped network shorter than /96, which the proxy check matches no client against (an IPv4 one only within ::ffff:0.0.0.0/96, an IPv6 one never): write the IPv4 network it stands for (10.0.0.0/8), or ::ffff:10.0.0.0/104`,
    );
  }
  return entries;
}

/** `https://ide.example.com,http://localhost:3000`, or `*`; unset or empty: none. Each an origin:
 * scheme (http, https), host and port, nothing after; taken as a browser sends it in its Origin
 * header (scheme and host in lower case, no default port: `HTTP://Example.com:80` is
 * `http://example.com`), which is what the CORS check compares it with. */
function origins(env: Env, variable: string): string[] {
  const raw = env[variable]?.trim();
  if (raw === undefined || raw === '') return [];
  if (raw === '*') return ['*'];
  const entries = raw.split(',').map((entry) => entry.trim());
  if (entries.includes('*')) throw new ConfigError(variable, '"*" (any origin) stands alone: set either * or a list of origins');
  return entries.map((origin) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    // Nothing after the host and port, and no user: what URL would otherwise drop silently.
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || !/^[a-z]+:\/\/[^/?#@]+$/i.test(origin)) {
      throw new ConfigError(variable, `"${origin}" is not an origin: scheme://host[:port] (http or https), nothing after (no path, not even "/")`);
    }
    return parsed.origin;
  });
}

/** An API key's length: long enough not to be guessed, short enough for any header. Its characters
 * are those of a bearer token (RFC 6750's b64token: letters, digits, - . _ ~ + / and =). */
const API_KEY_LENGTH = { least: 8, most: 200 };

/** `key1:120,key2,key3::500` — KEY[:REQUESTS[:LIVE_SESSIONS]]: a figure left out (or empty)
 * takes the server's default (requests per window; live sockets at once). A message names an
 * entry by its position, never by its key: keys are secrets (the access log redacts them, Redis
 * holds their digests). */
function apiKeys(env: Env, variable: string, defaultPerWindow: number): ApiKey[] {
  const raw = env[variable]?.trim();
  if (!raw) return [];
  const positions = new Map<string, number>();
  return raw.split(',').map((entry, index) => {
    const position = index + 1;
    const [key, perWindow, liveSessions, extra] = entry.trim().split(':').map((part) => part.trim());
    if (!key || extra !== undefined) throw new ConfigError(variable, `entry ${position} is not KEY, KEY:REQUESTS or KEY:REQUESTS:LIVE_SESSIONS`);
    if (key.length < API_KEY_LENGTH.least || key.length > API_KEY_LENGTH.most) {
      throw new ConfigError(variable, `entry ${position}: a key has ${API_KEY_LENGTH.least} to ${API_KEY_LENGTH.most} characters, this one ${key.length}`);
    }
    const outside = key.search(/[^A-Za-z0-9_.~+/=-]/);
    if (outside >= 0) {
      throw new ConfigError(variable, `entry ${position}: a key's characters are ASCII letters, digits and _ . ~ + / = - (its character ${outside + 1} is not)`);
    }
    // Else the last would take the key's figures without a word.
    const first = positions.get(key);
    if (first !== undefined) throw new ConfigError(variable, `entries ${first} and ${position} have the same key: give each key once`);
    positions.set(key, position);
    const atLeastOne = (figure: string) => /^\d+$/.test(figure) && Number.isSafeInteger(Number(figure)) && Number(figure) >= 1;
    // 0 would answer the key 429 to every request: refused, as CELLBLOCK_RATE_LIMIT_REQUESTS=0 is.
    if (perWindow !== undefined && perWindow !== '' && !atLeastOne(perWindow)) {
      throw new ConfigError(variable, `entry ${position}: requests must be a whole number of at least 1`);
    }
    if (liveSessions !== undefined && liveSessions !== '' && !atLeastOne(liveSessions)) {
      throw new ConfigError(variable, `entry ${position}: live sessions must be a whole number of at least 1`);
    }
    const apiKey: ApiKey = { key, requestsPerWindow: perWindow === undefined || perWindow === '' ? defaultPerWindow : Number(perWindow) };
    if (liveSessions) apiKey.maxLiveSessions = Number(liveSessions);
    return apiKey;
  });
}

/**
 * Refuses a CELLBLOCK_MAX_JOB_OUTPUT_BYTES below what a job of one of `runtimes` (those this
 * process serves or runs: its own checkout's images/runtimes) may store at the runtime's default
 * limits, counted as the API counts a job it refuses (`job_output_above_maximum`,
 * outputAboveMaximum): else every job of that runtime that names no limits would be refused by
 * the API, or failed by the worker, and only a job would show it. Names the runtime that needs
 * the most.
 */
export function checkMaxJobOutputBytes(maxJobOutputBytes: number, runtimes: readonly Runtime[]): void {
  let most: { runtime: Runtime; checked: CheckedSubmission; problem: string } | undefined;
  for (const runtime of runtimes) {
    let checked: CheckedSubmission;
    try {
      checked = checkSubmission(runtime, { fileNames: [runtime.sourceFile], args: [] });
    } catch {
      // A runtime whose default job is refused for another reason (its own files' doing, said
      // where a job names it) asks nothing of this maximum: not a stack trace at start.
      continue;
    }
    const problem = outputAboveMaximum(checked, maxJobOutputBytes);
    if (problem !== undefined && checked.mostOutputBytes > (most?.checked.mostOutputBytes ?? 0)) most = { runtime, checked, problem };
  }
  if (most === undefined) return;
  throw new ConfigError(
    'CELLBLOCK_MAX_JOB_OUTPUT_BYTES',
    `a job of runtime "${most.runtime.id}" at its default limits would be refused (${most.problem}): set at least ${most.checked.mostOutputBytes}`,
  );
}

/** The machine's sandbox uids, for a message. */
const SANDBOX_UIDS = `the machine's ${SANDBOX_UID_COUNT} sandbox uids (${SANDBOX_UID}-${SANDBOX_UID + SANDBOX_UID_COUNT - 1})`;

/** "8 jobs at once (CELLBLOCK_WORKER_CONCURRENCY 4 + CELLBLOCK_BACKGROUND_SLOTS 4)": a worker
 * process's jobs at once (jobsAtOnce) and the settings they come from, for a refusal's or a
 * warning's line. */
export function describeJobsAtOnce(config: Pick<Config, 'workerConcurrency' | 'backgroundSlots' | 'backgroundAfterMs'>): string {
  const { workerConcurrency, backgroundSlots, backgroundAfterMs } = config;
  const lane = backgroundAfterMs > 0 ? ` + CELLBLOCK_BACKGROUND_SLOTS ${backgroundSlots}` : '';
  return `${jobsAtOnce(workerConcurrency, backgroundSlots, backgroundAfterMs)} jobs at once (CELLBLOCK_WORKER_CONCURRENCY ${workerConcurrency}${lane})`;
}

/**
 * Checks the jobs the machine's worker processes run at once against its sandbox uids: each live
 * pool slot holds one of SANDBOX_UID_COUNT (src/pool/uid-leases.ts), shared by every worker
 * process of the machine. Refuses (a ConfigError) where they could not hold even
 * COMPILED_JOB_SLOTS each, as a load of a compiled language's jobs would need: those jobs would
 * fail `no_sandbox_uid`, and only a load would show it. Answers a warning where they could not
 * hold MOST_SLOTS_PER_JOB each: at full load, checked and interactive jobs may fail so (settings
 * that ran before this check, as 4 processes of 48 + 48 jobs at once, start with it). The check is
 * necessary, not sufficient: a worker gives its own ready slots and its own uids kept given back
 * to its jobs' slots (src/pool/slot-uids.ts), but not another worker process's, whose ready slots,
 * kept uids (UIDS_KEPT_FREE) and withheld ones may hold what this count leaves; the default jobs
 * at once leave room for the kept ones (defaultWorkerConcurrency).
 */
export function checkSandboxUids(
  config: Pick<Config, 'workerProcesses' | 'workerConcurrency' | 'backgroundSlots' | 'backgroundAfterMs' | 'workerSettingsSet'>,
): string | undefined {
  const { workerProcesses, workerConcurrency, backgroundSlots, backgroundAfterMs } = config;
  const lane = backgroundAfterMs > 0;
  const jobs = jobsAtOnce(workerConcurrency, backgroundSlots, backgroundAfterMs);
  const settings = `${workerProcesses} worker process(es) (CELLBLOCK_WORKER_PROCESSES) × ${describeJobsAtOnce(config)}`;
  const jobsSum = lane ? 'CELLBLOCK_WORKER_CONCURRENCY + CELLBLOCK_BACKGROUND_SLOTS' : 'CELLBLOCK_WORKER_CONCURRENCY';
  const least = workerProcesses * jobs * COMPILED_JOB_SLOTS;
  if (least > SANDBOX_UID_COUNT) {
    throw new ConfigError(
      uidSettingToName(config),
      `${settings} × ${COMPILED_JOB_SLOTS} sandbox uids, what a compiled language's job holds at once (its compile's beside a run's) = ${least}, above ${SANDBOX_UIDS}: set ${fewerJobs(config, jobs, jobsSum).join(', or ')}`,
    );
  }
  const most = workerProcesses * jobs * MOST_SLOTS_PER_JOB;
  if (most <= SANDBOX_UID_COUNT) return undefined;
  const perJob = Math.floor(SANDBOX_UID_COUNT / (workerProcesses * jobs));
  const failing = perJob < MOST_SLOTS_PER_JOB - 1 ? `checked jobs (up to ${MOST_SLOTS_PER_JOB - 1}) and interactive ones (${MOST_SLOTS_PER_JOB})` : `interactive jobs (${MOST_SLOTS_PER_JOB})`;
  const mostJobs = Math.floor(SANDBOX_UID_COUNT / MOST_SLOTS_PER_JOB / workerProcesses);
  return (
    `${settings} × up to ${MOST_SLOTS_PER_JOB} sandbox uids a job may hold at once (an interactive test's two runs beside its two compiles) = ${most}, above ${SANDBOX_UIDS}: ` +
    `at full load each job has ${perJob} uids, and ${failing} may fail no_sandbox_uid; ${jobsSum} at most ${mostJobs} per worker process gives every job its ${MOST_SLOTS_PER_JOB}`
  );
}

/** The setting a refusal of checkSandboxUids names: of those set, the first whose lowering helps
 * (the jobs at once, then the lane's, then the processes), else the first set. */
function uidSettingToName(config: Pick<Config, 'workerProcesses' | 'workerConcurrency' | 'backgroundSlots' | 'backgroundAfterMs' | 'workerSettingsSet'>): WorkerSetting {
  const { workerProcesses, workerConcurrency, backgroundSlots, backgroundAfterMs, workerSettingsSet } = config;
  const helps: Record<WorkerSetting, boolean> = {
    CELLBLOCK_WORKER_CONCURRENCY: workerConcurrency > 1,
    CELLBLOCK_BACKGROUND_SLOTS: backgroundAfterMs > 0 && backgroundSlots > 0,
    CELLBLOCK_WORKER_PROCESSES: workerProcesses > 1,
  };
  const order: WorkerSetting[] = ['CELLBLOCK_WORKER_CONCURRENCY', 'CELLBLOCK_BACKGROUND_SLOTS', 'CELLBLOCK_WORKER_PROCESSES'];
  return order.find((setting) => helps[setting] && workerSettingsSet.includes(setting)) ?? order.find((setting) => workerSettingsSet.includes(setting)) ?? 'CELLBLOCK_WORKER_CONCURRENCY';
}

/** What would bring the jobs at once within the uids at COMPILED_JOB_SLOTS each: fewer jobs per
 * worker process (the lane's alone where the slots are 1 already), or fewer worker processes. */
function fewerJobs(config: Pick<Config, 'workerProcesses' | 'workerConcurrency' | 'backgroundAfterMs'>, jobs: number, jobsSum: string): string[] {
  const { workerProcesses, workerConcurrency, backgroundAfterMs } = config;
  const ways: string[] = [];
  const mostJobs = Math.floor(SANDBOX_UID_COUNT / COMPILED_JOB_SLOTS / workerProcesses);
  if (mostJobs >= 1) {
    ways.push(
      workerConcurrency > 1 || backgroundAfterMs === 0
        ? `${jobsSum} at most ${mostJobs} per worker process`
        : `CELLBLOCK_BACKGROUND_SLOTS at most ${mostJobs - 1} (CELLBLOCK_WORKER_CONCURRENCY is 1 already)`,
    );
  }
  const mostProcesses = Math.floor(SANDBOX_UID_COUNT / COMPILED_JOB_SLOTS / jobs);
  if (mostProcesses >= 1) ways.push(`at most ${mostProcesses} worker processes (CELLBLOCK_WORKER_PROCESSES) of ${jobs} jobs at once`);
  if (ways.length === 0) {
    ways.push(`at most ${SANDBOX_UID_COUNT / COMPILED_JOB_SLOTS} worker processes (CELLBLOCK_WORKER_PROCESSES) of one job at once (CELLBLOCK_WORKER_CONCURRENCY 1${backgroundAfterMs > 0 ? ', CELLBLOCK_BACKGROUND_SLOTS 0' : ''})`);
  }
  return ways;
}

/** A key prefix of Redis's keys: short, since every key of the queue starts with it. */
const MAX_QUEUE_PREFIX_LENGTH = 64;

/** How often, by default, the workers look for jobs whose lock has expired: this, or half the
 * lock duration where that is less (stalledIntervalFor). BullMQ's check re-queues the running
 * jobs that the check before it marked and whose lock has gone since, and it skips a run that
 * finds the guard key of the last one (which lasts exactly one interval) not yet expired, as its
 * own timer often does: so checks come one to two intervals apart. A dead worker's job must be
 * marked after its worker's last renewal (which unmarks it); it is re-queued by the first check
 * after both that mark and its lock's expiry, so at most max(lock, 2 intervals) + 2 intervals
 * after the death: the lock duration plus two intervals where the interval is at most half the
 * lock (5 s of the default 30 s is), up to four intervals where it is longer. At BullMQ's 30 s,
 * which was ours (the lock duration), that was a minute and a half after the death (91.8 s
 * measured). Shorter costs next to nothing (one small Lua script per worker process and interval,
 * run at most once per interval for the whole queue, over its running jobs only) and cannot make
 * a live worker's job stall: only an expired lock does, which the interval does not touch. */
export const DEFAULT_STALLED_INTERVAL_MS = 5000;

/** CELLBLOCK_STALLED_INTERVAL_MS's default for a lock of `lockDurationMs`: DEFAULT_STALLED_INTERVAL_MS,
 * at most half the lock, so that a dead worker's job is re-queued within the lock duration plus
 * two intervals whatever the lock. At the least lock (1000 ms) that is 500 ms, the least interval
 * the variable takes (BullMQ takes any above 0). */
function stalledIntervalFor(lockDurationMs: number): number {
  return Math.min(Math.floor(lockDurationMs / 2), DEFAULT_STALLED_INTERVAL_MS);
}

/** What loadConfig's defaults depend on besides the environment and the cores. */
export interface HostFacts {
  /** The hard open files limit of a process that runs workers (bin/host-limits.ts reads it): it
   * caps CELLBLOCK_WORKER_CONCURRENCY's default. */
  openFilesLimit?: number;
}

export function loadConfig(env: Env = process.env, host: HostFacts = {}): Config {
  const defaultRequestsPerWindow = integer(env, 'CELLBLOCK_RATE_LIMIT_REQUESTS', 600, 1);
  const redisUrl = redisUrlSetting(env, 'CELLBLOCK_REDIS_URL');
  const queuePrefix = env.CELLBLOCK_QUEUE_PREFIX?.trim() || 'cellblock';
  if (queuePrefix.length > MAX_QUEUE_PREFIX_LENGTH) {
    throw new ConfigError('CELLBLOCK_QUEUE_PREFIX', `at most ${MAX_QUEUE_PREFIX_LENGTH} characters, got ${queuePrefix.length}`);
  }
  if (!/^[A-Za-z0-9_-]+$/.test(queuePrefix)) {
    throw new ConfigError('CELLBLOCK_QUEUE_PREFIX', `ASCII letters (A-Z, a-z), digits, "_" and "-" only, got "${queuePrefix}"`);
  }
  const dataDir = directory(env, 'CELLBLOCK_DATA_DIR', dataDirFromEnv(env), { mountOption: true });
  const lockDurationMs = integer(env, 'CELLBLOCK_LOCK_DURATION_MS', 30_000, 1000);
  const stalledIntervalMs = integer(env, 'CELLBLOCK_STALLED_INTERVAL_MS', stalledIntervalFor(lockDurationMs), 500);
  // A dead worker's job is given back by the first check to find it unlocked that comes after one
  // that marked it (DEFAULT_STALLED_INTERVAL_MS): within the lock duration plus two intervals of
  // the death with an interval up to half the lock, within four intervals up to the lock (taken,
  // as README says). With checks further apart than a lock lasts, the lock would no longer bound
  // the wait at all (README's "lock duration plus two intervals"): refused. BullMQ itself checks
  // only that the interval is above 0.
  if (stalledIntervalMs > lockDurationMs) {
    throw new ConfigError(
      'CELLBLOCK_STALLED_INTERVAL_MS',
      `${stalledIntervalMs} is longer than CELLBLOCK_LOCK_DURATION_MS (${lockDurationMs}): the stall check would run less often than a lock lasts, and a dead worker's job would wait for it past the lock duration plus two intervals; set at most the lock duration`,
    );
  }
  const workerProcesses = integer(env, 'CELLBLOCK_WORKER_PROCESSES', 1, 0);
  const backgroundAfterMs = integer(env, 'CELLBLOCK_BACKGROUND_AFTER_MS', DEFAULT_BACKGROUND_AFTER_MS, 0);
  const laneSlotsSet = env.CELLBLOCK_BACKGROUND_SLOTS === undefined || env.CELLBLOCK_BACKGROUND_SLOTS === '' ? undefined : integer(env, 'CELLBLOCK_BACKGROUND_SLOTS', 0, 0);
  const poolRefillConcurrency = integer(env, 'CELLBLOCK_POOL_REFILL_CONCURRENCY', DEFAULT_POOL_REFILL_CONCURRENCY, 1);
  const workerConcurrency = integer(
    env,
    'CELLBLOCK_WORKER_CONCURRENCY',
    defaultWorkerConcurrency({ workerProcesses, backgroundAfterMs, backgroundSlots: laneSlotsSet, poolRefillConcurrency, ...host }),
    1,
  );
  const workerSettingsSet = WORKER_SETTINGS.filter((variable) => env[variable] !== undefined && env[variable].trim() !== '');
  const backgroundSlots = laneSlotsSet ?? workerConcurrency;
  return {
    redisUrl,
    queuePrefix,
    host: env.CELLBLOCK_HOST?.trim() || '127.0.0.1',
    port: integer(env, 'CELLBLOCK_PORT', 8080, 0, 65_535),
    dataDir,
    poolStateDir: directory(env, 'CELLBLOCK_POOL_STATE_DIR', path.join(dataDir, 'pool'), { mountOption: true }),
    redisDataDir: directory(env, 'CELLBLOCK_REDIS_DATA_DIR', path.join(dataDir, 'redis')),
    redisAppendFsync: oneOf(env, 'CELLBLOCK_REDIS_FSYNC', REDIS_APPEND_FSYNC_POLICIES, DEFAULT_REDIS_APPEND_FSYNC),
    cgroupBase: oneOf(env, 'CELLBLOCK_CGROUP_BASE', CGROUP_BASES, 'root'),
    workerProcesses,
    workerSettingsSet,
    workerConcurrency,
    backgroundAfterMs,
    backgroundSlots,
    backgroundAfterCpuMs: integer(env, 'CELLBLOCK_BACKGROUND_AFTER_CPU_MS', DEFAULT_BACKGROUND_AFTER_MS, 0),
    // As many as the worker may run at once: fewer, and a burst of jobs finds the pool empty.
    poolMaxReady: integer(env, 'CELLBLOCK_POOL_MAX_READY', jobsAtOnce(workerConcurrency, backgroundSlots, backgroundAfterMs), 0),
    poolRefillConcurrency,
    resultTtlSeconds: integer(env, 'CELLBLOCK_RESULT_TTL_SECONDS', 3600, 1),
    lockDurationMs,
    stalledIntervalMs,
    maxStalledCount: integer(env, 'CELLBLOCK_MAX_STALLED_COUNT', 1, 0),
    workerHeartbeatTtlMs: integer(env, 'CELLBLOCK_WORKER_HEARTBEAT_TTL_MS', 15_000, 1000),
    shutdownGraceMs: integer(env, 'CELLBLOCK_SHUTDOWN_GRACE_MS', 60_000),
    maxQueuedJobs: integer(env, 'CELLBLOCK_MAX_QUEUED_JOBS', 10_000, 1),
    maxWaitMs: integer(env, 'CELLBLOCK_MAX_WAIT_MS', 60_000, 1),
    requestTimeoutMs: integer(env, 'CELLBLOCK_REQUEST_TIMEOUT_MS', 30_000, 1000),
    bodyLimitBytes: integer(env, 'CELLBLOCK_BODY_LIMIT_BYTES', 4 * 1024 * 1024, 1024),
    maxFiles: integer(env, 'CELLBLOCK_MAX_FILES', 64, 1, MAX_LIST_ITEMS),
    maxTests: integer(env, 'CELLBLOCK_MAX_TESTS', 100, 1, MAX_LIST_ITEMS),
    maxBatchJobs: integer(env, 'CELLBLOCK_MAX_BATCH_JOBS', 100, 1, MAX_LIST_ITEMS),
    maxArgs: integer(env, 'CELLBLOCK_MAX_ARGS', 128, 0, MAX_LIST_ITEMS),
    maxJobOutputBytes: integer(env, 'CELLBLOCK_MAX_JOB_OUTPUT_BYTES', DEFAULT_MAX_JOB_OUTPUT_BYTES, 1),
    judgeCompileCacheBytes: integer(env, 'CELLBLOCK_JUDGE_COMPILE_CACHE_BYTES', DEFAULT_JUDGE_COMPILE_CACHE_BYTES, 0),
    maxLiveSessionsPerClient: integer(env, 'CELLBLOCK_MAX_LIVE_SESSIONS_PER_CLIENT', 16, 1),
    webhookAttempts: integer(env, 'CELLBLOCK_WEBHOOK_ATTEMPTS', 5, 1),
    webhookTimeoutMs: integer(env, 'CELLBLOCK_WEBHOOK_TIMEOUT_MS', 5000, 100),
    webhookBackoffMs: integer(env, 'CELLBLOCK_WEBHOOK_BACKOFF_MS', 1000, 0),
    webhookMemoryBytes: integer(env, 'CELLBLOCK_WEBHOOK_MEMORY_BYTES', DEFAULT_WEBHOOK_MEMORY_BYTES, 1),
    webhookDestinations: new OutboundPolicy(
      // An empty allow list is "anywhere": "none" must not read as the most open setting.
      networks(env, 'CELLBLOCK_WEBHOOK_ALLOW', [], '"none" would permit no destination; to send no webhook or callback, set CELLBLOCK_WEBHOOK_DENY=0.0.0.0/0,::/0'),
      networks(env, 'CELLBLOCK_WEBHOOK_DENY', DEFAULT_WEBHOOK_DENY),
    ),
    trustedProxies: trustedProxies(env),
    corsOrigins: origins(env, 'CELLBLOCK_CORS_ORIGINS'),
    apiKeys: apiKeys(env, 'CELLBLOCK_API_KEYS', defaultRequestsPerWindow),
    rateLimitWindowMs: integer(env, 'CELLBLOCK_RATE_LIMIT_WINDOW_MS', 60_000, 1000),
    defaultRequestsPerWindow,
    logLevel: oneOf(env, 'CELLBLOCK_LOG_LEVEL', LOG_LEVELS, 'info'),
  };
}
