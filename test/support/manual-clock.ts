import type { Clock } from "../../src/sandbox/clock.js";

/**
 * A clock that stands still until the test moves it: a timeout fires when
 * the test has seen what it was waiting for, however fast the machine is.
 */
export class ManualClock implements Clock {
  private at = Date.now();
  private due: { at: number; fire: () => void }[] = [];

  now(): number {
    return this.at;
  }

  after(ms: number, fire: () => void): () => void {
    const entry = { at: this.at + ms, fire };
    this.due.push(entry);
    return () => void (this.due = this.due.filter((e) => e !== entry));
  }

  /** Moves the clock on by `ms`, firing what falls due, earliest first. */
  advance(ms: number): void {
    this.at += ms;
    for (;;) {
      const next = this.due.filter((e) => e.at <= this.at).sort((a, b) => a.at - b.at)[0];
      if (!next) return;
      this.due = this.due.filter((e) => e !== next);
      next.fire();
    }
  }

  /**
   * Keeps the clock moving by `stepMs` every `everyMs` of real time until the
   * returned function is called: once a timeout has struck, time goes on as
   * in production (the SIGKILL a SIGTERM's grace ends in, a later step's
   * deadline already past), so nothing waits for a test that moves on.
   */
  keepMoving(stepMs: number, everyMs: number): () => void {
    const timer = setInterval(() => this.advance(stepMs), everyMs);
    return () => clearInterval(timer);
  }

  /** How many scheduled calls are waiting (a run that ended cancels its own). */
  get scheduled(): number {
    return this.due.length;
  }
}
