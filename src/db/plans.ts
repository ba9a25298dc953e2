import type { PlanChanges } from "../plans/changes.js";
import type { Queryable } from "./pool.js";

export async function storePlan(db: Queryable, runId: number, sealedPlanFile: Buffer, changes: PlanChanges, fingerprint: string): Promise<void> {
  await db.query("insert into plans (run_id, plan_file, changes, fingerprint) values ($1, $2, $3, $4) on conflict (run_id) do nothing", [
    runId,
    sealedPlanFile,
    JSON.stringify(changes),
    fingerprint,
  ]);
}

export interface StoredPlan {
  run_id: number;
  plan_file: Buffer;
  changes: PlanChanges;
  fingerprint: string;
  consumed_at: Date | null;
  consumed_by: string | null;
}

export async function plansOfRuns(db: Queryable, runIds: number[]): Promise<Map<number, StoredPlan>> {
  const { rows } = await db.query<StoredPlan>(
    "select run_id, plan_file, changes, fingerprint, consumed_at, consumed_by from plans where run_id = any($1)",
    [runIds],
  );
  return new Map(rows.map((r) => [r.run_id, r]));
}

/** Marks every plan the PR ever made as used up (closed, or /unlock); returns how many were still open. */
export async function consumePullPlans(db: Queryable, repo: string, pullNumber: number, by: string): Promise<number> {
  const { rowCount } = await db.query(
    `update plans p set consumed_at = now(), consumed_by = $3
       from runs r join run_groups g on g.id = r.group_id
      where p.run_id = r.id and g.kind = 'plan' and g.repo = $1 and g.pull_number = $2 and p.consumed_at is null`,
    [repo, pullNumber, by],
  );
  return rowCount ?? 0;
}

/**
 * Marks plans as used up (applied, or spent by an interrupted apply); returns
 * how many were still open. A plan spent by an interruption stays usable
 * after a fresh plan matched it, so an apply may consume it again.
 */
export async function consumePlans(db: Queryable, runIds: number[], by: string): Promise<number> {
  const { rowCount } = await db.query(
    "update plans set consumed_at = now(), consumed_by = $2 where run_id = any($1) and (consumed_at is null or consumed_by like 'interrupted:%')",
    [runIds, by],
  );
  return rowCount ?? 0;
}

/** The stored changes of every run in a group that produced a plan (but the `except` runs), by run id. */
export async function groupChanges(db: Queryable, groupId: number, except: number[] = []): Promise<Map<number, PlanChanges>> {
  const { rows } = await db.query<{ run_id: number; changes: PlanChanges }>(
    "select p.run_id, p.changes from plans p join runs r on r.id = p.run_id where r.group_id = $1 and not (p.run_id = any($2::bigint[]))",
    [groupId, except],
  );
  return new Map(rows.map((r) => [r.run_id, r.changes]));
}
