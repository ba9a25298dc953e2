import { groupChanges } from "../db/plans.js";
import { claimGroupReport, getGroup, leafRuns } from "../db/runs.js";
import type { GitHub } from "../github/github.js";
import { PLAN_COMMENT_MARKER, renderPlanComment } from "../render/plan-comment.js";
import { renderPlanCheck } from "../render/plan-check.js";
import type { PlanReport } from "../render/plan-report.js";
import { updateApprovalCheck } from "./approval-check.js";
import type { WorkerDeps } from "./deps.js";

/** Builds the report of a finished group from what Postgres holds. */
export async function loadPlanReport(deps: WorkerDeps, groupId: number): Promise<PlanReport> {
  const group = await getGroup(deps.pool, groupId);
  const runs = await leafRuns(deps.pool, groupId);
  const changes = await groupChanges(deps.pool, groupId);
  return {
    repo: group.repo,
    sha: group.sha,
    projects: runs.map((run) => ({
      name: run.project,
      workspace: run.workspace,
      status: run.status === "succeeded" ? "succeeded" : "failed",
      changes: changes.get(run.id),
      failure: run.error ? { ...run.error, output: run.output ?? undefined } : undefined,
    })),
  };
}

/**
 * Posts the plan comment and completes `plangate/plan` once every run of the
 * group has finished. Exactly one worker reports; if GitHub refuses, the claim
 * is given back so the job's retry reports instead.
 */
export async function reportPlanGroupIfDone(deps: WorkerDeps, groupId: number, gh: GitHub): Promise<void> {
  if (!(await claimGroupReport(deps.pool, groupId))) return;
  try {
    const group = await getGroup(deps.pool, groupId);
    const report = await loadPlanReport(deps, groupId);
    const [owner, name] = group.repo.split("/") as [string, string];
    const repo = { owner, name };
    if (group.pull_number !== null) await gh.syncComments(repo, group.pull_number, PLAN_COMMENT_MARKER, renderPlanComment(deps.templates, report));
    if (group.check_run_id !== null) {
      const { conclusion, output } = renderPlanCheck(deps.templates, report);
      await gh.updateCheckRun(repo, group.check_run_id, { status: "completed", conclusion, output });
    }
    await updateApprovalCheck(deps, gh, groupId);
  } catch (error) {
    await deps.pool.query("update run_groups set reported_at = null where id = $1", [groupId]);
    throw error;
  }
}
