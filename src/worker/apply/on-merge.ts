import { appendAuditEvent } from "../../audit/audit-log.js";
import { consumePullPlans } from "../../db/plans.js";
import { inTransaction } from "../../db/pool.js";
import { latestPlanGroup } from "../../db/run-groups.js";
import type { PullClosedPayload } from "../../jobs/jobs.js";
import { applyUnits, denyApply, hasChanges, reviewedUnits, type ApplyContext } from "./apply.js";
import { approvalStatus } from "../approval/approval-check.js";
import type { WorkerDeps } from "../deps.js";
import { releasePullLocks } from "./release-locks.js";
import { baseRulesBeforeMerge } from "../base-rules.js";

/**
 * A PR was closed. Merged: apply what was reviewed on its last planned head
 * (only if approved and only if the merge commit plans the same change).
 * Closed without merge: release its locks and discard its plans.
 */
export async function onPullClosed(deps: WorkerDeps, job: PullClosedPayload): Promise<void> {
  const repo = { owner: job.owner, name: job.repo };
  const repoName = `${job.owner}/${job.repo}`;
  const gh = await deps.github.forInstallation(job.installationId);
  if (!job.merged || !job.mergeSha) {
    await inTransaction(deps.pool, async (tx) => {
      await consumePullPlans(tx, repoName, job.number, "closed");
      await releasePullLocks(tx, repoName, job.number, job.actor, "closed");
    });
    return;
  }

  const ctx: ApplyContext = { trigger: job.trigger, installationId: job.installationId, repo, pullNumber: job.number, sha: job.mergeSha, actor: job.actor, onMerge: true };
  await inTransaction(deps.pool, (tx) =>
    appendAuditEvent(tx, { action: "apply.requested", actor: job.actor, repo: repoName, pullNumber: job.number, sha: job.mergeSha, details: { onMerge: true, headSha: job.headSha } }),
  );
  const group = await latestPlanGroup(deps.pool, repoName, job.number, job.headSha);
  if (!group) {
    // Nothing was planned for the merged head: nothing to apply, nothing to hold.
    await inTransaction(deps.pool, (tx) => releasePullLocks(tx, repoName, job.number, job.actor, "merged"));
    return;
  }
  // The rules of the base as it stood before this PR landed: the merge commit's first parent, never the merge commit.
  const base = await baseRulesBeforeMerge(deps, gh, group, job.mergeSha);
  const status = await approvalStatus(deps, gh, group, base);
  if (status.pending) return denyApply(deps, gh, ctx, `The plan of ${group.sha.slice(0, 7)} was still running when this pull request was merged, so there was no reviewed change to apply.`);
  if (status.failed) return denyApply(deps, gh, ctx, `The last plan of ${group.sha.slice(0, 7)} failed, so there is no reviewed change to apply.`);
  if (!status.met) {
    const missing = status.missing.map((m) => `${m.project} had ${m.have} of ${m.needed} approvals`).join("; ");
    return denyApply(deps, gh, ctx, `This pull request was merged without the required approvals on ${group.sha.slice(0, 7)} (${missing}), so nothing was applied.`);
  }
  const units = (await reviewedUnits(deps, group, true, base)).filter((u) => !u.plan.consumed_at && hasChanges(u));
  if (!units.length) {
    await inTransaction(deps.pool, (tx) => releasePullLocks(tx, repoName, job.number, job.actor, "merged"));
    return;
  }
  await applyUnits(deps, gh, ctx, units);
}
