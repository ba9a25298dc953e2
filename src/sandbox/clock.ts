/**
 * The time a run's timeout is measured on. Production uses the system's
 * clock; a test passes one it moves itself, so a timeout fires when the test
 * has seen what it waits for, not after a guessed number of milliseconds.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fire` once, `ms` from now on this clock; the returned function cancels the call. */
  after(ms: number, fire: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fire) {
    const timer = setTimeout(fire, ms);
    return () => clearTimeout(timer);
  },
};
