import type { Queryable } from "./pool.js";

/** An owner's /override of a deny policy, bound to the plan (fingerprint) it was given on. */
export interface PolicyOverride {
  policy: string;
  project: string;
  workspace: string;
  fingerprint: string;
  actor: string;
  reason: string;
}

/** Records an override (once per policy and plan: a second one for the same plan keeps the first). */
export async function insertPolicyOverride(tx: Queryable, row: PolicyOverride & { repo: string; pullNumber: number; runId: number }): Promise<boolean> {
  const { rowCount } = await tx.query(
    `insert into policy_overrides (repo, pull_number, policy, project, workspace, fingerprint, run_id, actor, reason)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict do nothing`,
    [row.repo, row.pullNumber, row.policy, row.project, row.workspace, row.fingerprint, row.runId, row.actor, row.reason],
  );
  return rowCount === 1;
}

/** Every override given on a pull request, oldest first. */
export async function pullOverrides(db: Queryable, repo: string, pullNumber: number): Promise<PolicyOverride[]> {
  const { rows } = await db.query<PolicyOverride>(
    "select policy, project, workspace, fingerprint, actor, reason from policy_overrides where repo = $1 and pull_number = $2 order by id",
    [repo, pullNumber],
  );
  return rows;
}
