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

/** A running program's CPU weight: put in the background while a more urgent program runs, back after. */
export interface CpuShare {
  background(on: boolean): Promise<void> | void;
}

/** One lane in use: whose turn, and its program's CPU weight if it has one. */
interface Holding {
  turn: JobTurn;
  cpu?: CpuShare;
  background: boolean;
}

/** Whether `urgent` goes before `other`: more urgent, and not of the same plan group. */
const before = (urgent: JobTurn, other: JobTurn) => urgent.priority < other.priority && (other.group === undefined || urgent.group !== other.group);

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
 *
 * A program with a CPU weight (its run's cgroup) is preemptible: a more
 * urgent program (a small PR's plan beside a large PR's batch) does not
 * wait for it to end but runs at once on a lane it lends, and every less
 * urgent program runs in the background (on the CPU the urgent ones leave
 * idle) while a more urgent program or job (`running`) is at work. Nothing
 * is stopped, so a lock or cache a background program holds is still
 * given up in time.
 */
export class SandboxLanes {
  private busy = 0;
  private arrivals = 0;
  private readonly waiting: Waiter[] = [];
  /** The lanes in use now (a turn object is its job's: runningJob). */
  private readonly holdings = new Set<Holding>();
  /** The jobs running in this process now, in or out of a lane: each puts the programs less urgent than it in the background. */
  private readonly jobs = new Map<JobTurn, number>();

  constructor(readonly count: number) {
    if (!Number.isInteger(count) || count < 1) throw new Error(`sandbox lanes must be a whole number of at least 1, not ${count}`);
  }

  /**
   * Waits for a lane in `turn` (the running job's by default); the
   * returned function gives it back, once. A wait that `abandon` ends (or
   * finds ended) leaves the line and throws LaneWaitAbandoned; a lane free at
   * once (or lent by a less urgent, preemptible program) is taken whatever
   * `abandon` says, so that a caller always makes progress where it need
   * not wait. `cpu`: the program's CPU weight, which makes it preemptible.
   */
  async acquire(turn: JobTurn = runningJob.getStore() ?? { priority: 0 }, abandon?: AbortSignal, cpu?: CpuShare): Promise<() => void> {
    if ((this.busy < this.count && this.waiting.length === 0) || this.canBorrow(turn)) {
      this.busy++;
      return this.releaser(turn, cpu);
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
    return this.releaser(turn, cpu);
  }

  /** Whether a program more urgent than `turn`, and of another plan group, waits for a lane in this process. */
  moreUrgentWaiting(turn: JobTurn): boolean {
    return this.waiting.some((w) => before(w, turn));
  }

  /** Lanes free now, with nobody waiting for one. */
  idle(): number {
    return this.waiting.length ? 0 : Math.max(0, this.count - this.busy);
  }

  /** Whether the job of `turn` (its very object) holds a lane now. */
  heldBy(turn: JobTurn): boolean {
    return [...this.holdings].some((h) => h.turn === turn);
  }

  /**
   * Counts a job as running until the returned function is called (once):
   * while it runs, every preemptible program less urgent than it runs in the
   * background, also while the job works outside its lane (a PR's project
   * selection, its mirror's git fetch, storing and reporting its plan).
   */
  running(turn: JobTurn): () => void {
    this.jobs.set(turn, (this.jobs.get(turn) ?? 0) + 1);
    this.rebalance();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = this.jobs.get(turn)! - 1;
      if (left) this.jobs.set(turn, left);
      else this.jobs.delete(turn);
      this.rebalance();
    };
  }

  /**
   * A lane is lent to `turn` when nobody as urgent waits and a preemptible
   * program less urgent than it holds a lane not lent already: at most one
   * lane more per such program, so the lanes lent never outnumber the
   * programs that lend them.
   */
  private canBorrow(turn: JobTurn): boolean {
    if (this.waiting.some((w) => w.priority <= turn.priority)) return false;
    const lenders = [...this.holdings].filter((h) => h.cpu && before(turn, h.turn)).length;
    return lenders > this.busy - this.count;
  }

  /** Puts each preemptible program in the background while a more urgent program or job runs, and back once none does. */
  private rebalance(): void {
    const turns = [...[...this.holdings].map((h) => h.turn), ...this.jobs.keys()];
    for (const holding of this.holdings) {
      if (!holding.cpu) continue;
      const background = turns.some((other) => before(other, holding.turn));
      if (background === holding.background) continue;
      holding.background = background;
      void Promise.resolve(holding.cpu.background(background)).catch(() => undefined);
    }
  }

  private releaser(turn: JobTurn, cpu?: CpuShare): () => void {
    const holding: Holding = { turn, cpu, background: false };
    this.holdings.add(holding);
    this.rebalance();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holdings.delete(holding);
      // A lent lane is given back to no one: the lanes in use come back down to their count.
      const next = this.busy <= this.count ? this.waiting.shift() : undefined;
      // The lane passes straight to the next waiter: nobody can take it in between.
      if (next) next.grant();
      else this.busy--;
      this.rebalance();
    };
  }
}
