import type { PlanChanges } from "../plans/changes.js";
import type { Queryable } from "./pool.js";

export async function storePlan(db: Queryable, runId: number, sealedPlanFile: Buffer, changes: PlanChanges): Promise<void> {
  await db.query("insert into plans (run_id, plan_file, changes) values ($1, $2, $3) on conflict (run_id) do nothing", [
    runId,
    sealedPlanFile,
    JSON.stringify(changes),
  ]);
}

/** The stored changes of every run in a group that produced a plan, by run id. */
export async function groupChanges(db: Queryable, groupId: number): Promise<Map<number, PlanChanges>> {
  const { rows } = await db.query<{ run_id: number; changes: PlanChanges }>(
    "select p.run_id, p.changes from plans p join runs r on r.id = p.run_id where r.group_id = $1",
    [groupId],
  );
  return new Map(rows.map((r) => [r.run_id, r.changes]));
}
