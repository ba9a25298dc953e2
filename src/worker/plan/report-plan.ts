import { loadGroupResults } from "../../db/plan-report.js";
import { claimGroupReport, getGroup, releaseGroupReport } from "../../db/run-groups.js";
import type { GitHub } from "../../github/github.js";
import { PLAN_COMMENT_MARKER, renderPlanComment } from "../../render/plan-comment.js";
import { renderPlanCheck } from "../../render/plan-check.js";
import { updateApprovalCheck } from "../approval/approval-check.js";
import { baseRulesAtPlan } from "../base-rules.js";
import { planReportOf, type PlanReport } from "../../render/plan-report.js";
import type { WorkerDeps } from "../deps.js";

/** The labels plangate keeps on a PR, with fixed colours. */
export const PLAN_LABELS: Record<string, string> = { "plangate:no-changes": "c2e0c6", "plangate:changes": "fbca04", "plangate:destroy": "d93f0b" };

/** The label for the latest plan: destroy beats changes beats no changes; none when nothing planned. */
export function planLabel(report: PlanReport): string | undefined {
  const planned = report.projects.filter((p) => p.changes);
  if (!planned.length) return undefined;
  if (planned.some((p) => p.changes!.counts.destroy + p.changes!.counts.replace > 0)) return "plangate:destroy";
  if (planned.some((p) => p.changes!.resources.length > 0 || (p.changes!.outputs?.length ?? 0) > 0)) return "plangate:changes";
  return "plangate:no-changes";
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
    const runUrl = deps.runLinks?.url(groupId);
    const report = planReportOf(await loadGroupResults(deps.pool, groupId), runUrl);
    const [owner, name] = group.repo.split("/") as [string, string];
    const repo = { owner, name };
    if (group.pull_number !== null) await gh.syncComments(repo, group.pull_number, PLAN_COMMENT_MARKER, renderPlanComment(deps.templates, report, { maxParts: deps.maxComments }));
    if (group.check_run_id !== null) {
      const { conclusion, output } = renderPlanCheck(deps.templates, report);
      await gh.updateCheckRun(repo, group.check_run_id, { status: "completed", conclusion, output, detailsUrl: runUrl });
    }
    if (group.pull_number !== null) await gh.syncLabels(repo, group.pull_number, planLabel(report), PLAN_LABELS);
    await updateApprovalCheck(deps, gh, groupId, await baseRulesAtPlan(deps, gh, group));
  } catch (error) {
    await releaseGroupReport(deps.pool, groupId);
    throw error;
  }
}
