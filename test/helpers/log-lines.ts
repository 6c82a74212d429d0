// A pino logger whose lines a test reads back.
import pino from 'pino';

/** A logger at `level` that keeps each line it writes (its JSON and a newline) in `lines` (a new
 * array when not given), as it writes it: pino writes to a destination with a `write` method
 * synchronously, so a line is there once the call that logs it returns. */
export function collectingLogger(level: pino.LevelWithSilent, lines: string[] = []): { logger: pino.Logger; lines: string[] } {
  return { logger: pino({ level }, { write: (line: string) => void lines.push(line) }), lines };
}

/** A parsed line: its level, its message and its other fields. */
export type LogLine = { level: number; msg: string; [field: string]: unknown };

/** collectingLogger's, with its lines read back parsed. */
export function parsedLogger(level: pino.LevelWithSilent = 'info'): { logger: pino.Logger; lines: () => LogLine[] } {
  const { logger, lines } = collectingLogger(level);
  return { logger, lines: () => lines.map((line) => JSON.parse(line) as LogLine) };
}
