// The background lane. A job that has run for longer than `afterMs` stops counting against the
// worker's slots: one more BullMQ Worker takes jobs while it runs, up to one per lane Worker.
// If it is long because it burns CPU, its programs meanwhile run at the background CPU weight
// (the executor's backgroundAfterCpuMs), so the job taken into the freed slot is barely slowed
// by it. Without the lane, a few long jobs (an infinite loop or a fork bomb running to its
// limits) hold every slot, and each short job behind them waits seconds for one. The lane's own
// Workers are bounded, so a flood of long jobs still cannot run more than slots + lane jobs at
// once.

/** The most jobs a worker runs at once: its slots, and with a lane (`afterMs` > 0) the lane's. */
export function jobsAtOnce(slots: number, laneSlots: number, afterMs: number): number {
  return slots + (afterMs > 0 ? laneSlots : 0);
}

/** What the lane needs of a BullMQ Worker. */
export interface LaneWorker {
  /** Starts taking jobs (runs the Worker the first time). */
  resume(): void;
  /** Stops taking jobs; with `true`, without waiting for the one it runs. */
  pause(doNotWaitActive?: boolean): Promise<void>;
}

export class BackgroundLane {
  private longJobs = 0;
  /** workers[0..open) take jobs; the rest are paused or never ran. */
  private open = 0;
  private closed = false;

  constructor(
    private readonly workers: LaneWorker[],
    private readonly afterMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Jobs running longer than afterMs now. */
  get running(): number {
    return this.longJobs;
  }

  /** Call as a job starts; call what it returns as the job ends. */
  track(): () => void {
    if (this.afterMs <= 0 || this.workers.length === 0) return () => {};
    let long = false;
    const timer = setTimeout(() => {
      long = true;
      this.longJobs++;
      this.adjust();
    }, this.afterMs);
    timer.unref();
    return () => {
      clearTimeout(timer);
      if (!long) return;
      this.longJobs--;
      this.adjust();
    };
  }

  /** No more resuming: the worker is closing (its close() closes the lane's Workers too). */
  close(): void {
    this.closed = true;
  }

  private adjust(): void {
    if (this.closed) return;
    const wanted = Math.min(this.workers.length, this.longJobs);
    while (this.open < wanted) this.workers[this.open++]!.resume();
    // A paused Worker finishes the job it has; one blocked waiting for a job may still take the
    // next (BullMQ), so the lane can run one job more than wanted for a moment, never more than
    // it has Workers.
    while (this.open > wanted) this.workers[--this.open]!.pause(true).catch(this.onError);
  }
}
