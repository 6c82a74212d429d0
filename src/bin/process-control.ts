// Process-level plumbing shared by the commands: a pino logger, and one orderly shutdown on
// SIGTERM/SIGINT (a second signal exits at once).
import pino, { type Logger } from 'pino';

export function createLogger(level: string, role: string): Logger {
  return pino({ level, base: { service: 'cellblock', role, pid: process.pid } });
}

export function onShutdown(logger: Logger, shutdown: (signal: string) => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    shutdown(signal).then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handle);
  process.once('SIGINT', handle);
}
