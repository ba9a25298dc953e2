import type { PolicyConfig } from "../settings/repo-config.js";
import type { Queryable } from "./pool.js";
import { COLUMNS_BUT_OUTPUT, type Run } from "./runs.js";

/** A run's columns but its output (read only when the plan is taken, in SQL). */
const RUN_COLUMNS = COLUMNS_BUT_OUTPUT.split(", ").map((column) => `r.${column}`).join(", ");

/** An earlier plan, without its output (reusePlan copies that in SQL). */
export type EarlierRun = Omit<Run, "output"> & { last_applied: Date | null; group_policies: PolicyConfig[] };

/**
 * The latest plan of each project on the pull request made at another commit
 * than `headSha`, when it succeeded and its plan is still there to apply (not
 * used up); with when that project was last applied (anywhere), which voids it.
 */
export async function earlierPlans(db: Queryable, repo: string, pullNumber: number, headSha: string): Promise<EarlierRun[]> {
  const { rows } = await db.query<EarlierRun>(
    `select * from (
       select distinct on (r.project, r.workspace) ${RUN_COLUMNS}, g.policies as group_policies,
         (select max(a.finished_at) from runs a where a.kind = 'apply' and a.repo = r.repo and a.project = r.project and a.workspace = r.workspace and a.status in ('succeeded', 'failed', 'interrupted')) as last_applied
         from runs r join run_groups g on g.id = r.group_id
        where g.kind = 'plan' and g.repo = $1 and g.pull_number = $2 and r.kind = 'plan' and r.status <> 'queued' and r.status <> 'running'
          and not exists (select 1 from runs c where c.parent_run_id = r.id)
        order by r.project, r.workspace, r.id desc
     ) latest
     where latest.sha <> $3 and latest.status = 'succeeded'
       and exists (select 1 from plans p where p.run_id = latest.id and p.consumed_at is null)`,
    [repo, pullNumber, headSha],
  );
  return rows;
}

/** The new head's run takes the earlier run's plan as it is (the same plan file, changes, fingerprint and policy outcomes). */
export async function reusePlan(db: Queryable, runId: number, from: Pick<Run, "id" | "sha" | "summary" | "policy">): Promise<void> {
  await db.query(
    `insert into plans (run_id, plan_file, changes, fingerprint)
       select $1, plan_file, changes, fingerprint from plans where run_id = $2`,
    [runId, from.id],
  );
  await db.query(
    `update runs set status = 'succeeded', summary = $2, policy = $3, output = (select output from runs where id = $4), reused_from = $5, started_at = now(), finished_at = now() where id = $1`,
    [runId, from.summary ? JSON.stringify(from.summary) : null, from.policy ? JSON.stringify(from.policy) : null, from.id, from.sha],
  );
}
