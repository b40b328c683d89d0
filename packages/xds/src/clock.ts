/**
 * Time as the server sees it: heartbeat intervals, status and CSDS timestamps, write stalls. Pass
 * your own to test heartbeats and TTLs with virtual time (vitest fake timers work with the default,
 * which reads the global timer functions each time it is called).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `callback` every `ms` until cleared; the timer must not keep the process alive. */
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(timer: unknown): void;
}

/** The system clock: `Date.now()` and unref'd Node timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval(callback, ms) {
    const timer = setInterval(callback, ms);
    timer.unref?.();
    return timer;
  },
  clearInterval(timer) {
    clearInterval(timer as ReturnType<typeof setInterval>);
  },
};
