import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The priority of the job whose code is running (the queue's: lower is more
 * urgent), so that a sandbox entry deep inside it waits for a lane in the
 * job's place. Code outside any job waits as the most urgent.
 */
export const jobPriority = new AsyncLocalStorage<number>();

interface Waiter {
  priority: number;
  arrived: number;
  grant: () => void;
}

/**
 * How many sandboxed programs a process runs at once (PLANGATE_WORKERS):
 * the lanes that terraform, synth and the rest occupy. A job holds a lane
 * only while its program runs, so a process may run one job more than it
 * has lanes: that job's bookkeeping (opening a batch's workspaces, storing
 * the last one's results, a report's GitHub writes) fills the gaps the
 * lanes leave, rather than a core standing idle. A freed lane goes to the
 * most urgent waiter, the earliest first among equals.
 */
export class SandboxLanes {
  private busy = 0;
  private arrivals = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly count: number) {
    if (!Number.isInteger(count) || count < 1) throw new Error(`sandbox lanes must be a whole number of at least 1, not ${count}`);
  }

  /** Waits for a lane at `priority` (the running job's by default); the returned function gives it back, once. */
  async acquire(priority = jobPriority.getStore() ?? 0): Promise<() => void> {
    if (this.busy < this.count && this.waiting.length === 0) {
      this.busy++;
      return this.releaser();
    }
    await new Promise<void>((grant) => {
      this.waiting.push({ priority, arrived: this.arrivals++, grant });
      this.waiting.sort((a, b) => a.priority - b.priority || a.arrived - b.arrived);
    });
    return this.releaser();
  }

  /** Whether a program more urgent than `priority` waits for a lane in this process. */
  moreUrgentWaiting(priority: number): boolean {
    return this.waiting.some((w) => w.priority < priority);
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The lane passes straight to the next waiter: nobody can take it in between.
      if (next) next.grant();
      else this.busy--;
    };
  }
}
