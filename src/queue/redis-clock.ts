// Redis's clock, as one process estimates it. The API and the workers may run on machines whose
// clocks differ; a time stamped on one host and compared on another (a job's creation and its
// start, for its queue wait and latency; a result's finish and the expiry that reads or removes
// it) mixes two clocks unless both are one: Redis's, which every process of a deployment reaches.
// Asking Redis (TIME) at each stamp would cost a round trip per job, so each process reads Redis's
// clock every REDIS_CLOCK_SYNC_INTERVAL_MS and keeps its offset from its own; its stamps are its
// own clock plus that offset. The estimate is off by at most half the round trip it was read with
// (the reading with the shortest of the last few is kept), plus the drift between two machines'
// oscillators since (ppm: well under a millisecond per interval).
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';

/** A clock whose times compare with other processes' of the deployment. */
export interface Clock {
  /** Epoch ms by Redis's clock (an integer, as BullMQ's timestamps are). */
  now(): number;
  /** Redis's clock minus this process's Date.now(), ms: 0 until it has been read. */
  readonly offsetMs: number;
}

/** How often a process reads Redis's clock again. A host clock that steps (NTP after a suspend, an
 * operator's date) is followed within SAMPLES_KEPT readings: a minute. */
export const REDIS_CLOCK_SYNC_INTERVAL_MS = 10_000;
/** Readings kept: the offset is the one read with the shortest round trip among them, so that one
 * read on a busy event loop or a slow network (its error half its round trip) is outweighed. */
const SAMPLES_KEPT = 6;

interface Reading {
  offsetMs: number;
  roundTripMs: number;
}

export class RedisClock implements Clock {
  private readings: Reading[] = [];
  private chosenOffsetMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;

  /** `localNow`: this process's clock (Date.now; a test's shifted one). */
  constructor(
    private readonly redis: Pick<Redis, 'time'>,
    private readonly localNow: () => number = Date.now,
  ) {}

  get offsetMs(): number {
    return this.chosenOffsetMs;
  }

  now(): number {
    return this.localNow() + this.chosenOffsetMs;
  }

  /** Reads Redis's clock (one TIME round trip; one at a time: a call while one is under way waits
   * for it). Rejects as the call does, keeping the offset it had. */
  sync(): Promise<void> {
    return (this.reading ??= this.read().finally(() => (this.reading = undefined)));
  }

  /** Reads it every `intervalMs` from now until stop() (the first reading is the caller's: sync);
   * a failed reading goes to `onError` (the offset stays as it was: the local clock until one has
   * succeeded). */
  start(intervalMs: number, onError: (error: unknown) => void): void {
    this.timer = setInterval(() => void this.sync().catch(onError), intervalMs);
    // The process's life is its server's and workers', not this timer's.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async read(): Promise<void> {
    const sentAtMs = this.localNow();
    const before = performance.now();
    const [seconds, microseconds] = await this.redis.time();
    const roundTripMs = performance.now() - before;
    const redisMs = Number(seconds) * 1000 + Number(microseconds) / 1000;
    // Redis read its clock somewhere in the round trip: its middle, on average.
    this.readings.push({ offsetMs: redisMs - (sentAtMs + roundTripMs / 2), roundTripMs });
    if (this.readings.length > SAMPLES_KEPT) this.readings.shift();
    const best = this.readings.reduce((kept, reading) => (reading.roundTripMs < kept.roundTripMs ? reading : kept));
    this.chosenOffsetMs = Math.round(best.offsetMs);
  }
}

/** The BullMQ script a worker runs that stamps a job's finish with the time it is given (ARGV[2],
 * after its keys: as many as its file name says, moveToFinished-14.lua): finishedOn and the
 * finished set's score, which every expiry compares. Not the take (moveToActive): processedOn is
 * what BullMQ's lock manager times its renewals from and what the lock fence counts from, both by
 * this process's clock (Date.now(), performance.now()); stamped by Redis's, a worker behind by d
 * renewed its locks d late (past half a lock: the lock expired and the job ran twice) and one
 * ahead was fenced d early. */
const STAMPING_SCRIPTS: Readonly<Record<string, number>> = { moveToFinished: 14 };
/** What BullMQ put there is its Date.now() of an instant ago; a value farther from it is no time
 * of BullMQ's (a later BullMQ laid its arguments out otherwise), and is left as it is. */
const JUST_NOW_MS = 60_000;
/** moveToFinished's ARGV[6], after the time: 1 to take the next job in the same script. That take
 * (its processedOn) and the delayed jobs' promotion before it are stamped by the finish's time. */
const FETCH_NEXT_ARG = 4;
/**
 * How far this process's clock may be from Redis's for its finishes to keep BullMQ's own stamp
 * (Date.now()) and its fetch of the next job. That fetch saves a round trip per job (about 4% of a
 * closed loop's rate, README), but stamps the take by the finish's time: so the finish must be by
 * this process's clock, and is then off from Redis's by this much at most, which a result's
 * expiry (a TTL of at least a second, cleaned every interval) does not notice. Hosts whose clocks
 * NTP keeps agree within a few ms, and one host's processes to within the estimate's error.
 */
export const CLOCKS_AGREE_MS = 100;

/** What stampByClock needs of BullMQ's Scripts (a Worker's public `scripts`). */
export interface ScriptRunner {
  execCommand(client: never, commandName: string, args: unknown[]): unknown;
}

/**
 * Makes a BullMQ Worker stamp the jobs it finishes by `clock` (Redis's) instead of its process's
 * Date.now() whenever the two disagree by more than CLOCKS_AGREE_MS: BullMQ takes no clock, and a
 * job's finish stamped by one worker is compared by every reader and cleaner. Its scripts' calls
 * (`scripts`, the Worker's: its jobs run theirs) get the time replaced in their arguments, in place
 * (BullMQ reads a finished job's finishedOn back from them), and then take no next job
 * (FETCH_NEXT_ARG): the Worker's next moveToActive takes it, by its own clock, one more round trip.
 * Where the clocks agree, the call is BullMQ's as it was made. Takes, delayed scores and their
 * promotion stay on the process's clock, as BullMQ times its waits and lock renewals.
 * `onUnknownLayout` is told a command whose argument is not a time of BullMQ's (left as it is:
 * that job is stamped by the process's clock, as without this).
 */
export function stampByClock(scripts: ScriptRunner, clock: Clock, onUnknownLayout: (commandName: string) => void): void {
  const execCommand = scripts.execCommand.bind(scripts);
  scripts.execCommand = (client, commandName, args) => {
    const keys = STAMPING_SCRIPTS[commandName];
    if (keys !== undefined) {
      const stamped = args[keys + 1];
      const fetchNext = args[keys + 1 + FETCH_NEXT_ARG];
      if (typeof stamped !== 'number' || Math.abs(stamped - Date.now()) >= JUST_NOW_MS || (fetchNext !== 0 && fetchNext !== 1)) {
        onUnknownLayout(commandName);
      } else if (Math.abs(clock.offsetMs) > CLOCKS_AGREE_MS) {
        args[keys + 1] = clock.now();
        args[keys + 1 + FETCH_NEXT_ARG] = 0;
      }
    }
    return execCommand(client, commandName, args);
  };
}
