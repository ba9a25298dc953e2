import { batchSize, MAX_BATCH, planProjectJobs } from "../../src/jobs/plan-jobs.js";
import type { PlanProjectPayload } from "../../src/jobs/jobs.js";

const runs = (n: number) => Array.from({ length: n }, (_, i) => ({ id: 100 + i, project: `p${i}`, workspace: "default" }));
const base = { installationId: 7, exportKey: "g-sha" };
const idsOf = (jobs: ReturnType<typeof planProjectJobs>) => jobs.map((j) => (j.payload as PlanProjectPayload).runIds ?? [(j.payload as PlanProjectPayload).runId]);

describe("plan-project jobs of a group", () => {
  test("a small group keeps one job per project, in the project's own queue, keyed by its run", () => {
    const jobs = planProjectJobs("o/r", runs(31), base);
    expect(jobs).toHaveLength(31);
    expect(jobs[3]).toEqual({ task: "plan-project", payload: { runId: 103, ...base }, queueName: "project:o/r:p3:default", jobKey: "plan-run:103", maxAttempts: 3, priority: 3 });
  });

  test("a large group is planned in batches of at most MAX_BATCH runs, every run exactly once, in order", () => {
    expect([1, 31, 32, 64, 100, 128, 500, 2000].map((n) => batchSize(n))).toEqual([1, 1, 2, 4, 6, MAX_BATCH, MAX_BATCH, MAX_BATCH]);
    const jobs = planProjectJobs("o/r", runs(500), base);
    expect(jobs).toHaveLength(63);
    expect(idsOf(jobs).flat()).toEqual(runs(500).map((r) => r.id));
    expect(jobs[1]).toEqual({ task: "plan-project", payload: { runId: 108, runIds: [108, 109, 110, 111, 112, 113, 114, 115], priority: 1, ...base }, queueName: undefined, jobKey: "plan-batch:g-sha:108", maxAttempts: 3, priority: 1 });
    expect(jobs.map((j) => j.priority)).toEqual(jobs.map((_, n) => n));
  });

  test("PLANGATE_PLAN_BATCH caps a batch; 1 keeps one job per project whatever the group's size", () => {
    expect([100, 500].map((n) => batchSize(n, 3))).toEqual([3, 3]);
    expect(planProjectJobs("o/r", runs(500), base, { maxBatch: 1 })).toHaveLength(500);
    expect(idsOf(planProjectJobs("o/r", runs(100), base, { maxBatch: 4 })).every((ids) => ids.length === 4)).toBe(true);
  });

  test("with PLANGATE_REPO_CONCURRENCY a batch holds runs of one slot only, and the slots take turns", () => {
    const jobs = planProjectJobs("o/r", runs(200), base, { repoConcurrency: 3 });
    const slotOf = new Map(planProjectJobs("o/r", runs(200).slice(0, 31), base, { repoConcurrency: 3 }).map((j) => [(j.payload as PlanProjectPayload).runId, j.queueName]));
    for (const r of runs(200).slice(31)) slotOf.set(r.id, planProjectJobs("o/r", [r], base, { repoConcurrency: 3 })[0]!.queueName);
    for (const job of jobs) expect(new Set(idsOf([job])[0]!.map((id) => slotOf.get(id)))).toEqual(new Set([job.queueName]));
    expect(idsOf(jobs).flat().sort()).toEqual(runs(200).map((r) => r.id));
    expect(new Set(jobs.slice(0, 3).map((j) => j.queueName)).size).toBe(3);
  });
});
