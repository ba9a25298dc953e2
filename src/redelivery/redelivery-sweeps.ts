import { sweepDeliveries, type SweepDeps, type SweepOutcome, type SweepResult } from "./sweep-deliveries.js";

/** Told of each sweep's outcome and each redelivery asked for (the metrics). */
export interface SweepObserver {
  swept(outcome: SweepOutcome): void;
  asked(): void;
}

/**
 * The redelivery sweeps of one server process: one when it starts, then one
 * every PLANGATE_REDELIVER_EVERY after the previous ended. Sweeps of this
 * process run one after another; those of other processes wait on a lock in
 * Postgres (sweepDeliveries).
 */
export class RedeliverySweeps {
  private timer?: NodeJS.Timeout;
  private last: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly deps: Omit<SweepDeps, "onAsked">,
    private readonly everyMs: number,
    private readonly observer?: SweepObserver,
  ) {}

  /** Sweeps now, then every `everyMs` until stopped. */
  start(): void {
    void this.tick();
  }

  private async tick(): Promise<void> {
    await this.sweep();
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.everyMs);
    this.timer.unref();
  }

  /** One sweep, once this process's previous one ended: what it asked for, or why it did not. Never throws. */
  sweep(): Promise<SweepResult> {
    const next = this.last.then(() => this.once());
    this.last = next;
    return next;
  }

  private async once(): Promise<SweepResult> {
    let result: SweepResult;
    try {
      result = await sweepDeliveries({ ...this.deps, onAsked: () => this.observer?.asked() });
    } catch (error) {
      // The database or GitHub is unavailable: nothing was marked, the next sweep looks at the same deliveries.
      this.deps.log.warn({ err: error }, "the webhook redelivery sweep failed: the next one looks again");
      result = { outcome: "failed", asked: [], refused: [] };
    }
    this.observer?.swept(result.outcome);
    return result;
  }

  /** Stops the timer and waits for a sweep under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.last;
  }
}
