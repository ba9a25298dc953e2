import { moreUrgentJobWaiting } from "../../src/db/job-queue.js";
import { batchKeyPrefix, enqueueAll, TASKS } from "../../src/jobs/jobs.js";
import { planProjectJobs } from "../../src/jobs/plan-jobs.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

// What a running batch of plans makes way for (it then hands the rest of its runs back to the queue): a more urgent
// job of anyone else, never its own plan group's batches, which would only take turns with it and hand back in turn.

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db?.drop());

const runs = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: from + i, project: `p${from + i}`, workspace: "default" }));

describe("a more urgent job waiting", () => {
  test("a PR's own earlier batches do not count; another PR's job and a report do", async () => {
    // A 128-project PR: 16 batches of 8, priorities 0..15; its first four are waiting (handed back, say), and its
    // batch of priority 4 runs and looks.
    const big = planProjectJobs("o/mono", runs(1, 128), { installationId: 1, exportKey: "g1-abc" }, { maxBatch: 8 });
    expect(big.map((j) => j.priority)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    await enqueueAll(db.pool, big.slice(0, 4));
    expect(await moreUrgentJobWaiting(db.pool, 4, batchKeyPrefix("g1-abc"))).toBe(false);
    // Without the group the same jobs count: this is what the group spares.
    expect(await moreUrgentJobWaiting(db.pool, 4)).toBe(true);

    // Another PR's first project job (priority 0).
    const small = planProjectJobs("o/mono", runs(1000, 1), { installationId: 1, exportKey: "g2-def" });
    await enqueueAll(db.pool, small);
    expect(await moreUrgentJobWaiting(db.pool, 4, batchKeyPrefix("g1-abc"))).toBe(true);
    await db.pool.query("delete from graphile_worker._private_jobs where key like 'plan-run:%'");
    expect(await moreUrgentJobWaiting(db.pool, 4, batchKeyPrefix("g1-abc"))).toBe(false);

    // A report (priority -1) has no group: it always counts.
    await enqueueAll(db.pool, [{ task: TASKS.reportPlan, payload: { groupId: 7, installationId: 1 }, jobKey: "report-plan:7", maxAttempts: 12, priority: -1 }]);
    expect(await moreUrgentJobWaiting(db.pool, 0, batchKeyPrefix("g1-abc"))).toBe(true);
  });
});
