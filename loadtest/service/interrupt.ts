// What a benchmark does when it is stopped before its end: Ctrl-C (SIGINT), a kill (SIGTERM), a
// closed terminal (SIGHUP), or its output piped into a reader that left (`| head`: the next
// write fails with EPIPE, which would otherwise end Node with an unhandled 'error'). Its pool's
// roots are mounted by a helper process and its cgroups made in the kernel, neither of which
// goes away when Node exits, so it first closes what it opened, once, then exits with the
// conventional status. Closing waits for running jobs, so a second signal exits at once, as a
// SIGKILL would: an executor's leftovers are then reclaimed by the next executor started on the
// same data dir (a worker's or a benchmark's), and the load test's service processes stop on
// their own when it dies (src/parent-death.ts).
import { constants } from 'node:os';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** The status a shell shows for a program ended by a closed pipe (SIGPIPE). */
const EPIPE_STATUS = 128 + constants.signals.SIGPIPE;

/**
 * Runs `body`, then `close`, however the run ends. On an interrupt (above) `close` runs at once
 * (`body` goes on until it trips over what was closed; that failure is expected and not shown)
 * and the process exits with 128 + the signal's number, or 128 + SIGPIPE's for a closed output
 * (a signal while `close` runs: at once, with that signal's status); after an interrupt this
 * never returns, so that nothing after it prints a partial report.
 */
export async function runInterruptible(benchmark: string, body: () => Promise<void>, close: () => Promise<void>): Promise<void> {
  let closing: Promise<void> | undefined;
  const closeOnce = (): Promise<void> => (closing ??= close());
  let interrupted = false;
  const stop = (reason: string, status: number): void => {
    if (interrupted) return;
    interrupted = true;
    // From now on a signal means "do not wait".
    for (const signal of SIGNALS) {
      process.on(signal, () => {
        process.stderr.write(`${benchmark}: ${signal} while closing: exiting without waiting\n`);
        process.exit(128 + constants.signals[signal]);
      });
    }
    process.exitCode = status;
    process.stderr.write(`${benchmark}: ${reason}: closing what it opened, then exiting\n`);
    closeOnce()
      .catch((error: unknown) => process.stderr.write(`${benchmark}: closing failed: ${(error as Error).stack ?? String(error)}\n`))
      .finally(() => process.exit(status));
  };
  for (const signal of SIGNALS) process.once(signal, () => stop(signal, 128 + constants.signals[signal]));
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      stop(`${stream === process.stdout ? 'stdout' : 'stderr'} closed (EPIPE)`, EPIPE_STATUS);
    });
  }
  try {
    await body();
  } catch (error) {
    if (!interrupted) throw error;
  } finally {
    await closeOnce().catch((error: unknown) => {
      if (!interrupted) throw error;
    });
  }
  // The interrupt's handler exits once `close` is done.
  if (interrupted) await new Promise<never>(() => {});
}
