import type { PolicyConfig } from "../settings/repo-config.js";
import type { Queryable } from "./pool.js";
import type { Run } from "./runs.js";

/**
 * The latest plan of each project on the pull request made at another commit
 * than `headSha`, when it succeeded and its plan is still there to apply (not
 * used up); with when that project was last applied (anywhere), which voids it.
 */
export async function earlierPlans(db: Queryable, repo: string, pullNumber: number, headSha: string): Promise<(Run & { last_applied: Date | null; group_policies: PolicyConfig[] })[]> {
  const { rows } = await db.query<Run & { last_applied: Date | null; group_policies: PolicyConfig[] }>(
    `select * from (
       select distinct on (r.project, r.workspace) r.*, g.policies as group_policies,
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
export async function reusePlan(db: Queryable, runId: number, from: Run): Promise<void> {
  await db.query(
    `insert into plans (run_id, plan_file, changes, fingerprint)
       select $1, plan_file, changes, fingerprint from plans where run_id = $2`,
    [runId, from.id],
  );
  await db.query(
    `update runs set status = 'succeeded', summary = $2, policy = $3, output = $4, reused_from = $5, started_at = now(), finished_at = now() where id = $1`,
    [runId, from.summary ? JSON.stringify(from.summary) : null, from.policy ? JSON.stringify(from.policy) : null, from.output, from.sha],
  );
}
