import type { PolicyConfig } from "../settings/repo-config.js";
import type { Queryable } from "./pool.js";
import { COLUMNS_BUT_OUTPUT, type Run } from "./runs.js";

/** A run's columns but its output (read only when the plan is taken, in SQL). */
const RUN_COLUMNS = COLUMNS_BUT_OUTPUT.split(", ").map((column) => `r.${column}`).join(", ");

/** An earlier plan, without its output (reusePlans copies that in SQL). */
export type EarlierRun = Omit<Run, "output"> & { last_applied: Date | null; group_policies: PolicyConfig[] };

/**
 * The latest plan of each project on the pull request made at another commit
 * than `headSha`, when it succeeded and its plan is still there to apply (not
 * used up); with when that project was last applied (anywhere), which voids it.
 * That is asked only for the plans kept (after the latest is chosen), from the
 * project's apply runs (runs_applies); a stack's program is told by runs_parent.
 */
export async function earlierPlans(db: Queryable, repo: string, pullNumber: number, headSha: string): Promise<EarlierRun[]> {
  const { rows } = await db.query<EarlierRun>(
    `select latest.*,
       (select max(a.finished_at) from runs a where a.kind = 'apply' and a.repo = latest.repo and a.project = latest.project and a.workspace = latest.workspace and a.status in ('succeeded', 'failed', 'interrupted')) as last_applied
       from (
         select distinct on (r.project, r.workspace) ${RUN_COLUMNS}, g.policies as group_policies
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

/**
 * Each new head's run takes its earlier run's plan as it is (the same plan
 * file, changes, fingerprint, output and policy outcomes), naming the commit
 * it was planned at (a plan reused twice names where it was made): two
 * statements for all of them.
 */
export async function reusePlans(db: Queryable, pairs: { runId: number; fromId: number }[]): Promise<void> {
  if (!pairs.length) return;
  const list = JSON.stringify(pairs.map((p) => ({ run_id: p.runId, from_id: p.fromId })));
  await db.query(
    `insert into plans (run_id, plan_file, changes, fingerprint)
       select x.run_id, p.plan_file, p.changes, p.fingerprint
         from jsonb_to_recordset($1::jsonb) as x(run_id bigint, from_id bigint) join plans p on p.run_id = x.from_id
        order by x.run_id`,
    [list],
  );
  await db.query(
    `update runs r set status = 'succeeded', summary = f.summary, policy = f.policy, output = f.output, reused_from = coalesce(f.reused_from, f.sha), started_at = now(), finished_at = now()
       from jsonb_to_recordset($1::jsonb) as x(run_id bigint, from_id bigint) join runs f on f.id = x.from_id
      where r.id = x.run_id`,
    [list],
  );
}
