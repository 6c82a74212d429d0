// Preloaded (`node --import <this file>`, or through NODE_OPTIONS) into a child process whose wall
// clock a test shifts by CELLBLOCK_TEST_CLOCK_SHIFT_MS, as a host whose clock is ahead (positive)
// or behind: Date.now() and `new Date()` (with no argument) are shifted, as libfaketime's
// FAKETIME=+Ns shifts CLOCK_REALTIME; timers and performance.now() (the monotonic clock) are not.
// Loaded before any other module, so that BullMQ and everything else read the shifted clock. Plain
// JavaScript: it loads before tsx would.
const shiftMs = Number(process.env.CELLBLOCK_TEST_CLOCK_SHIFT_MS ?? 0);
if (!Number.isFinite(shiftMs)) throw new Error(`CELLBLOCK_TEST_CLOCK_SHIFT_MS is not a number: ${process.env.CELLBLOCK_TEST_CLOCK_SHIFT_MS}`);

const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);

class ShiftedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + shiftMs);
    else super(...args);
  }

  static now() {
    return realNow() + shiftMs;
  }
}

globalThis.Date = ShiftedDate;
