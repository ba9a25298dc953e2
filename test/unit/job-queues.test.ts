import { DRIFT_PRIORITY, planPriority, projectQueue } from "../../src/jobs/jobs.js";

describe("project queues", () => {
  test("without PLANGATE_REPO_CONCURRENCY each project (and workspace) has a queue of its own", () => {
    expect(projectQueue("o/r", "app", "default")).toBe("project:o/r:app:default");
    expect(projectQueue("o/r", "app", "prod")).not.toBe(projectQueue("o/r", "app", "default"));
  });

  test("with it, a repository's projects share that many queues, each project always the same one", () => {
    const names = Array.from({ length: 200 }, (_, i) => `p${i}`);
    const queues = new Set(names.map((n) => projectQueue("o/r", n, "default", 3)));
    expect(queues).toEqual(new Set(["repo:o/r:slot-0", "repo:o/r:slot-1", "repo:o/r:slot-2"]));
    expect(names.every((n) => projectQueue("o/r", n, "default", 3) === projectQueue("o/r", n, "default", 3))).toBe(true);
    expect(projectQueue("other/r", "p1", "default", 3)).toMatch(/^repo:other\/r:slot-/);
  });
});

describe("priorities", () => {
  test("a plan's n-th project waits behind every plan's earlier ones; drift checks behind every PR", () => {
    expect([0, 1, 1999].map(planPriority)).toEqual([0, 1, 1999]);
    expect(planPriority(5_000_000)).toBeLessThan(DRIFT_PRIORITY);
    // graphile-worker keeps a job's priority in a smallint column
    expect(DRIFT_PRIORITY).toBeLessThanOrEqual(32_767);
  });
});
