// One log line per kind of repeated error. While Redis is away BullMQ reports the same
// connection error on every reconnect attempt (twice a second); logging each would bury the
// lines that matter. The first is logged at once, later ones as a count once per interval.
import type { Logger } from 'pino';

export function repeatedErrorLogger(log: Logger, message: string, intervalMs: number): (error: Error) => void {
  const lastLoggedAt = new Map<string, number>();
  const suppressed = new Map<string, number>();
  return (error) => {
    const kind = error.message;
    const now = Date.now();
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
}
