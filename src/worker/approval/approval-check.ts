import { appendAuditEvent } from "../../audit/audit-log.js";
import { inTransaction } from "../../db/pool.js";
import { getGroup, recordApprovalState } from "../../db/run-groups.js";
import type { GitHub } from "../../github/github.js";
import type { BaseRules } from "../../settings/rules.js";
import { baseRulesNow } from "../base-rules.js";
import { approvalStatus, type ApprovalStatus } from "./approval-status.js";
import { checkTitle, type Templates } from "../../render/templates.js";
import type { WorkerDeps } from "../deps.js";

export const APPROVAL_CHECK = "plangate/approval";

function title(t: Templates, status: ApprovalStatus): string {
  if (status.unplanned.length && !status.failed) {
    return checkTitle(t, "plan-unplanned", { unplanned: status.unplanned, first: status.unplanned[0], others: status.unplanned.length - 1 });
  }
  const first = status.missing[0];
  return checkTitle(t, "approval", { ...status, first, more: first ? first.needed - first.have : 0, others: status.missing.length - 1 });
}

/**
 * Brings `plangate/approval` on the planned commit up to date: in progress
 * (saying who is still needed) until met, then success. Every change of state
 * is audited as approval.changed.
 */
export async function updateApprovalCheck(deps: WorkerDeps, gh: GitHub, groupId: number, base?: BaseRules): Promise<ApprovalStatus> {
  const group = await getGroup(deps.pool, groupId);
  const status = await approvalStatus(deps, gh, group, base ?? (await baseRulesNow(deps, gh, group)));
  const [owner, name] = group.repo.split("/") as [string, string];
  const repo = { owner, name };
  const output = {
    title: title(deps.templates, status),
    summary: deps.templates.render("check-approval", { ...status, shortSha: group.sha.slice(0, 7), author: group.author }),
  };
  const detailsUrl = deps.runLinks?.url(groupId);
  const update = status.met ? ({ status: "completed", conclusion: "success", output, detailsUrl } as const) : ({ status: "in_progress", output, detailsUrl } as const);
  let checkRunId = group.approval_check_run_id;
  // A completed check run cannot go back to in progress: a withdrawn approval gets a new one.
  if (checkRunId && !(group.approval_met === true && !status.met)) await gh.updateCheckRun(repo, checkRunId, update);
  else checkRunId = await gh.createCheckRun(repo, APPROVAL_CHECK, group.sha, update);
  await inTransaction(deps.pool, async (tx) => {
    const before = await recordApprovalState(tx, groupId, checkRunId, status.met);
    if (before !== status.met) {
      await appendAuditEvent(tx, {
        action: "approval.changed",
        actor: "plangate",
        repo: group.repo,
        pullNumber: group.pull_number,
        sha: group.sha,
        details: { met: status.met, approvers: status.approvers, missing: status.missing, planFailed: status.failed },
      });
    }
  });
  return status;
}
