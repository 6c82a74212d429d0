// A run stops itself once its job's lock may have expired. BullMQ renews a running job's lock
// every quarter to half of its duration (counting from the take's processedOn, by this process's
// clock, as this fence does), and stops the run (lockRenewalFailed) only when a renewal is
// answered "not yours". A worker cut off from Redis hears no answer at all: its renewal waits in
// TCP, while Redis's own clock (the lock's PX) expires the lock and the stall check hands the job
// to another worker. Both copies then ran at once until the link came back. The fence needs no
// answer: a lock set (or renewed) by a command sent at time t expires no sooner than t plus its
// duration, since Redis ran the command after t, so up to then the lock is certainly this
// worker's; from then on it may be another's, and the run is stopped, its result not stored
// (Redis would refuse it without the lock anyway).

/** Stopped this long before the lock may expire: the stop itself (the sandbox's kill, its
 * processes' end) takes a little while, and the job's next run must not start before it. */
export const LOCK_FENCE_MARGIN_MS = 250;

export class LockFence {
  /** Until when the lock is certainly held, on the monotonic clock (performance.now()). */
  private heldUntilMs: number;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  /** `lockedAtEpochMs`: when the command that took the lock was sent, by this process's Date.now() (BullMQ's `processedOn`,
   * the take's own timestamp, read before it was sent). `onExpiring` is called once, when the
   * lock may expire within LOCK_FENCE_MARGIN_MS, unless renewed() moved that later first. */
  constructor(
    private readonly lockDurationMs: number,
    lockedAtEpochMs: number,
    private readonly onExpiring: () => void,
  ) {
    this.heldUntilMs = performance.now() - (Date.now() - lockedAtEpochMs) + lockDurationMs;
    this.arm();
  }

  /** A renewal sent at `sentAtMs` (performance.now()) was answered: the lock holds a lock
   * duration from then. */
  renewed(sentAtMs: number): void {
    if (this.ended) return;
    this.heldUntilMs = Math.max(this.heldUntilMs, sentAtMs + this.lockDurationMs);
  }

  /** The run has ended: no call from now on. */
  stop(): void {
    this.ended = true;
    clearTimeout(this.timer);
  }

  /** Wakes when the lock may expire within the margin; a renewal meanwhile only moves that time,
   * read again at the wake (no timer per renewal). Never calls back synchronously. */
  private arm(): void {
    const leftMs = this.heldUntilMs - LOCK_FENCE_MARGIN_MS - performance.now();
    this.timer = setTimeout(() => {
      if (this.ended || this.stillHeld()) return;
      // Timers run before the loop reads its sockets: after a stall (a long synchronous step, a
      // paused process) a renewal's answer may already wait in the socket, unread. Looked at once
      // more after the loop has read them (setImmediate follows that poll), before stopping.
      setImmediate(() => {
        if (this.ended || this.stillHeld()) return;
        this.ended = true;
        this.onExpiring();
      });
    }, Math.max(0, leftMs));
  }

  /** Whether the lock is still certainly held beyond the margin: then armed again for then. */
  private stillHeld(): boolean {
    if (this.heldUntilMs - LOCK_FENCE_MARGIN_MS <= performance.now()) return false;
    this.arm();
    return true;
  }
}
