import { runningJob, LaneWaitAbandoned, SandboxLanes } from "../../src/sandbox/lanes.js";

/**
 * The sandbox lanes of a process (PLANGATE_WORKERS programs at once): a job
 * more than lanes may run, and a freed lane goes to the most urgent waiter,
 * so that a small PR's plan is never queued behind a large PR's next batch.
 */
const settled = () => new Promise((resolve) => setImmediate(resolve));

describe("SandboxLanes", () => {
  it("runs as many programs at once as it has lanes; the next waits until one is given back, given back once", async () => {
    const lanes = new SandboxLanes(2);
    const a = await lanes.acquire();
    const b = await lanes.acquire();
    let third = false;
    const c = lanes.acquire().then((release) => ((third = true), release));
    await settled();
    expect(third).toBe(false);
    a();
    a(); // a second release of the same lane frees nothing more
    const released = await c;
    expect(third).toBe(true);
    let fourth = false;
    void lanes.acquire().then(() => (fourth = true));
    await settled();
    expect(fourth).toBe(false);
    b();
    await settled();
    expect(fourth).toBe(true);
    released();
  });

  it("gives a freed lane to the most urgent waiter, the earliest first among equals, and says who waits", async () => {
    const lanes = new SandboxLanes(1);
    const held = await lanes.acquire({ priority: 5 });
    const order: string[] = [];
    const wait = (name: string, priority: number) => lanes.acquire({ priority }).then((release) => (order.push(name), release));
    const batchA = wait("next batch", 10);
    const batchB = wait("batch after", 10);
    await settled();
    expect(lanes.moreUrgentWaiting({ priority: 10 })).toBe(false);
    const small = wait("small PR", 0);
    await settled();
    expect(lanes.moreUrgentWaiting({ priority: 10 })).toBe(true);
    expect(lanes.moreUrgentWaiting({ priority: 0 })).toBe(false);
    held();
    (await small)();
    (await batchA)();
    (await batchB)();
    expect(order).toEqual(["small PR", "next batch", "batch after"]);
  });

  it("waits at the running job's priority when none is given", async () => {
    const lanes = new SandboxLanes(1);
    const held = await lanes.acquire({ priority: 0 });
    const inJob = runningJob.run({ priority: 3 }, () => lanes.acquire());
    await settled();
    expect(lanes.moreUrgentWaiting({ priority: 4 })).toBe(true);
    expect(lanes.moreUrgentWaiting({ priority: 3 })).toBe(false);
    held();
    (await inJob)();
  });

  it("never counts a waiter of the same plan group as more urgent: a PR's batches do not make way for one another", async () => {
    const lanes = new SandboxLanes(1);
    const held = await lanes.acquire({ priority: 0 });
    const earlierBatch = lanes.acquire({ priority: 2, group: "pr-1" });
    await settled();
    expect(lanes.moreUrgentWaiting({ priority: 9, group: "pr-1" })).toBe(false);
    expect(lanes.moreUrgentWaiting({ priority: 9, group: "pr-2" })).toBe(true);
    expect(lanes.moreUrgentWaiting({ priority: 9 })).toBe(true);
    held();
    (await earlierBatch)();
  });

  it("gives a wait up when its signal fires first: the waiter leaves the line and the freed lane goes to the next", async () => {
    const lanes = new SandboxLanes(1);
    const held = await lanes.acquire({ priority: 0 });
    const leaving = new AbortController();
    const order: string[] = [];
    const given = lanes.acquire({ priority: 3 }, leaving.signal).then(() => order.push("given up"), (error: Error) => error);
    const next = lanes.acquire({ priority: 7 }).then((release) => (order.push("next"), release));
    await settled();
    leaving.abort();
    expect(await given).toBeInstanceOf(LaneWaitAbandoned);
    expect(lanes.moreUrgentWaiting({ priority: 7 })).toBe(false);
    held();
    (await next)();
    expect(order).toEqual(["next"]);
    // Already given up and a lane must be waited for: refused at once.
    const busy = await lanes.acquire({ priority: 0 });
    await expect(lanes.acquire({ priority: 0 }, leaving.signal)).rejects.toBeInstanceOf(LaneWaitAbandoned);
    busy();
  });

  it("takes a lane free at once whatever the signal says, and a signal after the grant changes nothing", async () => {
    const lanes = new SandboxLanes(1);
    const aborted = new AbortController();
    aborted.abort();
    const first = await lanes.acquire({ priority: 0 }, aborted.signal);
    const late = new AbortController();
    const second = lanes.acquire({ priority: 0 }, late.signal);
    first();
    const release = await second;
    late.abort(); // granted already: the lane stays its
    let third = false;
    void lanes.acquire({ priority: 0 }).then((r) => ((third = true), r()));
    await settled();
    expect(third).toBe(false);
    release();
    await settled();
    expect(third).toBe(true);
  });

  it("counts idle lanes (none while anyone waits) and knows which job holds one", async () => {
    const lanes = new SandboxLanes(2);
    const mine = { priority: 3, group: "g" };
    const other = { priority: 3, group: "g" }; // equal, but another job's turn
    expect(lanes.idle()).toBe(2);
    const held = await runningJob.run(mine, () => lanes.acquire());
    expect([lanes.idle(), lanes.heldBy(mine), lanes.heldBy(other)]).toEqual([1, true, false]);
    const second = await lanes.acquire(other);
    const waiting = lanes.acquire({ priority: 0 });
    expect([lanes.idle(), lanes.heldBy(other)]).toEqual([0, true]);
    second();
    const third = await waiting; // the lane passed straight on: still none idle
    expect([lanes.idle(), lanes.heldBy(other)]).toEqual([0, false]);
    held();
    held(); // once only
    expect([lanes.idle(), lanes.heldBy(mine)]).toEqual([1, false]);
    third();
    expect(lanes.idle()).toBe(2);
  });

  /** A program's CPU weight as the lanes set it: every change, in order. */
  const cpuOf = (name: string, log: string[]) => ({ background: (on: boolean) => void log.push(`${name} ${on ? "background" : "foreground"}`) });

  it("lends a preemptible, less urgent program's lane to a more urgent one at once, and puts the less urgent in the background meanwhile", async () => {
    const lanes = new SandboxLanes(1);
    const log: string[] = [];
    const batch = await lanes.acquire({ priority: 5, group: "big" }, undefined, cpuOf("batch", log));
    // A small PR's plan: no wait for the batch to end.
    const small = await lanes.acquire({ priority: 0, group: "small" }, undefined, cpuOf("small", log));
    expect(log).toEqual(["batch background"]);
    expect(lanes.idle()).toBe(0);
    // One lane lent per lender: the next urgent program waits, and so does anyone less urgent.
    let another = false;
    const third = lanes.acquire({ priority: 0, group: "other" }).then((r) => ((another = true), r));
    await settled();
    expect(another).toBe(false);
    small();
    // The lent lane is not passed on: the batch still holds the process's one lane.
    await settled();
    expect(another).toBe(false);
    expect(log).toEqual(["batch background", "batch foreground"]);
    batch();
    (await third)();
    expect(lanes.idle()).toBe(1);
  });

  it("never lends for a program without a CPU weight, to one of the same group or as urgent, or past anyone as urgent waiting", async () => {
    const lanes = new SandboxLanes(1);
    const log: string[] = [];
    const plain = await lanes.acquire({ priority: 5 });
    const waits = async (turn: { priority: number; group?: string }) => {
      let got = false;
      const granted = lanes.acquire(turn).then((r) => ((got = true), r));
      await settled();
      return { got: () => got, granted };
    };
    const a = await waits({ priority: 0 });
    expect(a.got()).toBe(false); // nothing to preempt: it waits
    plain();
    (await a.granted)();
    const batch = await lanes.acquire({ priority: 5, group: "g" }, undefined, cpuOf("batch", log));
    const sameGroup = await waits({ priority: 0, group: "g" });
    const asUrgent = await waits({ priority: 5, group: "h" });
    expect([sameGroup.got(), asUrgent.got()]).toEqual([false, false]);
    // More urgent than the batch, but the same-group waiter (priority 0) is ahead of it in line: it waits its turn.
    const behind = await waits({ priority: 1, group: "h" });
    expect(behind.got()).toBe(false);
    expect(log).toEqual([]);
    batch();
    (await sameGroup.granted)();
    (await behind.granted)();
    (await asUrgent.granted)();
  });

  it("keeps every less urgent program in the background while any more urgent one runs, and ranks a group's own programs alike", async () => {
    const lanes = new SandboxLanes(2);
    const log: string[] = [];
    const first = await lanes.acquire({ priority: 3, group: "big" }, undefined, cpuOf("first", log));
    const second = await lanes.acquire({ priority: 4, group: "big" }, undefined, cpuOf("second", log));
    expect(log).toEqual([]); // one group's batches never give way to each other
    const small = await lanes.acquire({ priority: 0, group: "small" }, undefined, cpuOf("small", log));
    expect(log.sort()).toEqual(["first background", "second background"]);
    log.length = 0;
    first(); // gone in the background: nothing to undo for it
    expect(log).toEqual([]);
    small();
    expect(log).toEqual(["second foreground"]);
    second();
    expect(lanes.idle()).toBe(2);
  });

  it("keeps less urgent programs in the background while a more urgent job works outside any lane, and only then", async () => {
    const lanes = new SandboxLanes(2);
    const log: string[] = [];
    const batchTurn = { priority: 6, group: "big" };
    const batchJob = lanes.running(batchTurn); // the batch's own job: never in its own way
    const batch = await lanes.acquire(batchTurn, undefined, cpuOf("batch", log));
    const sibling = lanes.running({ priority: 2, group: "big" }); // an earlier batch of the same PR, storing its plans
    expect(log).toEqual([]);
    const selection = lanes.running({ priority: 0 }); // another PR's project selection
    expect(log).toEqual(["batch background"]);
    const report = lanes.running({ priority: -1 }); // and its report, at the same time
    selection();
    selection(); // once only
    expect(log).toEqual(["batch background"]);
    report();
    expect(log).toEqual(["batch background", "batch foreground"]);
    sibling();
    batch();
    batchJob();
    expect(lanes.idle()).toBe(2);
  });

  it("refuses a count that is not a whole number of at least 1", () => {
    expect(() => new SandboxLanes(0)).toThrow(/at least 1/);
    expect(() => new SandboxLanes(1.5)).toThrow(/at least 1/);
  });
});
