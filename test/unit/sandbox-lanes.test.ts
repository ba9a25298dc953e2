import { jobPriority, SandboxLanes } from "../../src/sandbox/lanes.js";

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
    const held = await lanes.acquire(5);
    const order: string[] = [];
    const wait = (name: string, priority: number) => lanes.acquire(priority).then((release) => (order.push(name), release));
    const batchA = wait("next batch", 10);
    const batchB = wait("batch after", 10);
    await settled();
    expect(lanes.moreUrgentWaiting(10)).toBe(false);
    const small = wait("small PR", 0);
    await settled();
    expect(lanes.moreUrgentWaiting(10)).toBe(true);
    expect(lanes.moreUrgentWaiting(0)).toBe(false);
    held();
    (await small)();
    (await batchA)();
    (await batchB)();
    expect(order).toEqual(["small PR", "next batch", "batch after"]);
  });

  it("waits at the running job's priority when none is given", async () => {
    const lanes = new SandboxLanes(1);
    const held = await lanes.acquire(0);
    const inJob = jobPriority.run(3, () => lanes.acquire());
    await settled();
    expect(lanes.moreUrgentWaiting(4)).toBe(true);
    expect(lanes.moreUrgentWaiting(3)).toBe(false);
    held();
    (await inJob)();
  });

  it("refuses a count that is not a whole number of at least 1", () => {
    expect(() => new SandboxLanes(0)).toThrow(/at least 1/);
    expect(() => new SandboxLanes(1.5)).toThrow(/at least 1/);
  });
});
