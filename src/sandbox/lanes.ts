import { AsyncLocalStorage } from "node:async_hooks";

/** A job's place in the queue: its priority (lower is more urgent) and the plan group it works for, if any. */
export interface JobTurn {
  priority: number;
  /** The plan group (its export key): its jobs never make way for one another, whatever their priorities. */
  group?: string;
}

/**
 * The turn of the job whose code is running, so that a sandbox entry deep
 * inside it waits for a lane in the job's place. Code outside any job waits
 * as the most urgent.
 */
export const runningJob = new AsyncLocalStorage<JobTurn>();

interface Waiter extends JobTurn {
  arrived: number;
  grant: () => void;
}

/** A wait for a lane given up because its `abandon` signal fired first: no program ran. */
export class LaneWaitAbandoned extends Error {
  constructor() {
    super("the wait for a sandbox lane was given up");
  }
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
  /** The turns that hold a lane now (a turn object is its job's: runningJob). */
  private readonly holders = new Map<JobTurn, number>();

  constructor(readonly count: number) {
    if (!Number.isInteger(count) || count < 1) throw new Error(`sandbox lanes must be a whole number of at least 1, not ${count}`);
  }

  /**
   * Waits for a lane in `turn` (the running job's by default); the
   * returned function gives it back, once. A wait that `abandon` ends (or
   * finds ended) leaves the line and throws LaneWaitAbandoned; a lane free at
   * once is taken whatever `abandon` says, so that a caller always makes
   * progress where it need not wait.
   */
  async acquire(turn: JobTurn = runningJob.getStore() ?? { priority: 0 }, abandon?: AbortSignal): Promise<() => void> {
    if (this.busy < this.count && this.waiting.length === 0) {
      this.busy++;
      return this.releaser(turn);
    }
    if (abandon?.aborted) throw new LaneWaitAbandoned();
    await new Promise<void>((granted, abandoned) => {
      const waiter: Waiter = {
        ...turn,
        arrived: this.arrivals++,
        grant: () => {
          abandon?.removeEventListener("abort", leave);
          granted();
        },
      };
      const leave = () => {
        const at = this.waiting.indexOf(waiter);
        if (at < 0) return; // granted already
        this.waiting.splice(at, 1);
        abandoned(new LaneWaitAbandoned());
      };
      abandon?.addEventListener("abort", leave, { once: true });
      this.waiting.push(waiter);
      this.waiting.sort((a, b) => a.priority - b.priority || a.arrived - b.arrived);
    });
    return this.releaser(turn);
  }

  /** Whether a program more urgent than `turn`, and of another plan group, waits for a lane in this process. */
  moreUrgentWaiting(turn: JobTurn): boolean {
    return this.waiting.some((w) => w.priority < turn.priority && (turn.group === undefined || w.group !== turn.group));
  }

  /** Lanes free now, with nobody waiting for one. */
  idle(): number {
    return this.waiting.length ? 0 : this.count - this.busy;
  }

  /** Whether the job of `turn` (its very object) holds a lane now. */
  heldBy(turn: JobTurn): boolean {
    return this.holders.has(turn);
  }

  private releaser(turn: JobTurn): () => void {
    this.holders.set(turn, (this.holders.get(turn) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const held = this.holders.get(turn)!;
      if (held > 1) this.holders.set(turn, held - 1);
      else this.holders.delete(turn);
      const next = this.waiting.shift();
      // The lane passes straight to the next waiter: nobody can take it in between.
      if (next) next.grant();
      else this.busy--;
    };
  }
}
