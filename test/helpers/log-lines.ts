// A pino logger whose lines a test reads back.
import pino from 'pino';

/** A logger at `level` that keeps each line it writes (its JSON and a newline) in `lines` (a new
 * array when not given), as it writes it: pino writes to a destination with a `write` method
 * synchronously, so a line is there once the call that logs it returns. */
export function collectingLogger(level: pino.LevelWithSilent, lines: string[] = []): { logger: pino.Logger; lines: string[] } {
  return { logger: pino({ level }, { write: (line: string) => void lines.push(line) }), lines };
}
