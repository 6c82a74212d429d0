// One log line per kind of repeated error. While Redis is away BullMQ reports the same
// connection error on every reconnect attempt (twice a second); logging each would bury the
// lines that matter. The first is logged at once, later ones as a count once per interval.
import type { Logger } from 'pino';

/** Kinds remembered before the ones that need no memory are dropped: a message can name a job
 * ("could not renew lock for job <id>"), so the kinds have no bound of their own. */
const KINDS_BEFORE_SWEEP = 256;

/** A repeated worker or notifier error (Redis away) is logged at most this often. */
export const REPEATED_ERROR_LOG_INTERVAL_MS = 30_000;

export type RepeatedErrorLogger = ((error: Error) => void) & { readonly kinds: number };

export function repeatedErrorLogger(log: Logger, message: string, intervalMs: number): RepeatedErrorLogger {
  const lastLoggedAt = new Map<string, number>();
  const suppressed = new Map<string, number>();
  /** A kind logged over an interval ago with nothing suppressed since would be logged afresh
   * anyway: forgetting it changes no line. */
  const sweep = (now: number) => {
    for (const [kind, at] of lastLoggedAt) {
      if (now - at >= intervalMs && !suppressed.has(kind)) lastLoggedAt.delete(kind);
    }
  };
  const logError = (error: Error) => {
    const kind = error.message;
    const now = Date.now();
    if (lastLoggedAt.size >= KINDS_BEFORE_SWEEP) sweep(now);
    const last = lastLoggedAt.get(kind);
    if (last !== undefined && now - last < intervalMs) {
      suppressed.set(kind, (suppressed.get(kind) ?? 0) + 1);
      return;
    }
    const repeats = suppressed.get(kind) ?? 0;
    suppressed.delete(kind);
    lastLoggedAt.set(kind, now);
    log.error({ err: error, ...(repeats > 0 ? { repeatsSinceLastLine: repeats } : {}) }, message);
  };
  return Object.defineProperty(logError, 'kinds', { get: () => lastLoggedAt.size }) as RepeatedErrorLogger;
}
