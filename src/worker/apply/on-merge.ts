import { appendAuditEvent } from "../../audit/audit-log.js";
import { consumePullPlans, plansOfRuns } from "../../db/plans.js";
import { inTransaction } from "../../db/pool.js";
import { hasRunGroup, latestPlanGroup, pullWasPlanned, verifiedQueueGroup, type Refusal } from "../../db/run-groups.js";
import { leafRuns } from "../../db/runs.js";
import type { PullClosedPayload } from "../../jobs/jobs.js";
import { loadHeadPlans } from "../../db/head-plans.js";
import { approvalStatus } from "../approval/approval-status.js";
import type { GitHub } from "../../github/github.js";
import type { BaseRules } from "../../settings/rules.js";
import { baseRulesBeforeMerge, defaultBranchRules } from "../base-rules.js";
import type { WorkerDeps } from "../deps.js";
import { applyGate, type Admitted } from "./apply-gate.js";
import { reviewedUnits, sameProject } from "./apply-units.js";
import { releasePullLocks } from "./release-locks.js";
import { answerEvenIfBroken, refuseApply, runApply, type ApplyContext, type Attempt } from "./run-apply.js";

/**
 * A PR was closed. Merged: the apply gate decides, under the base's rules as
 * they stood before the merge, whether its reviewed plans are applied at the
 * merge commit; whatever it decides is commented, checked and audited, and the
 * PR's locks are released. Closed without merge: locks released, plans discarded.
 */
export async function onPullClosed(deps: WorkerDeps, job: PullClosedPayload, attempt: Attempt = { number: 1, max: 1 }): Promise<void> {
  const repo = { owner: job.owner, name: job.repo };
  const repoName = `${job.owner}/${job.repo}`;
  if (!job.merged || !job.mergeSha) {
    await inTransaction(deps.pool, async (tx) => {
      await consumePullPlans(tx, repoName, job.number, "closed");
      await releasePullLocks(tx, repoName, job.number, job.actor, "closed");
    });
    return;
  }
  const ctx: ApplyContext = { trigger: job.trigger, installationId: job.installationId, repo, pullNumber: job.number, sha: job.mergeSha, actor: job.actor, mode: "merge", log: deps.log, ref: `refs/heads/${job.baseRef ?? job.defaultBranch ?? "main"}` };
  const merged = { ...job, mergeSha: job.mergeSha };
  await answerEvenIfBroken(deps, ctx, attempt, () => applyMerged(deps, ctx, merged));
}

async function applyMerged(deps: WorkerDeps, ctx: ApplyContext, job: PullClosedPayload & { mergeSha: string }): Promise<void> {
  const repoName = `${job.owner}/${job.repo}`;
  const gh = await deps.github.forInstallation(job.installationId);
  if (!(await hasRunGroup(deps.pool, job.trigger))) {
    await inTransaction(deps.pool, (tx) =>
      appendAuditEvent(tx, { action: "apply.requested", actor: job.actor, repo: repoName, pullNumber: job.number, sha: job.mergeSha, details: { onMerge: true, headSha: job.headSha } }),
    );
  }
  const group = await latestPlanGroup(deps.pool, repoName, job.number, job.headSha);
  const target = group && (await mergeRules(deps, gh, job, group));
  if (target && "refusal" in target) return refuseApply(deps, ctx, target.refusal);
  const base = target?.rules;
  // The head's runs and plans, read once for the approvals and the units.
  const head = group && (await loadHeadPlans(deps.pool, group));
  const decision = applyGate({
    mode: "merge",
    planned: !!group,
    everPlanned: !!group || (await pullWasPlanned(deps.pool, repoName, job.number)),
    status: group && base && head ? await approvalStatus(deps, gh, group, base, head) : undefined,
    units: group && base && head ? await reviewedUnits(deps, group, "merge", base, undefined, head) : [],
  });
  if (!decision.allow) return refuseApply(deps, ctx, decision.refusal);
  await runApply(deps, gh, { ...ctx, approvers: decision.approvers }, await withQueuePlans(deps, repoName, job.number, job.mergeSha, decision.units));
}

/**
 * The rules a merge is judged by: for a merge into the default branch, its
 * .plangate.yml as it stood before the merge (the merge commit's first
 * parent); for a merge into a branch the default branch's `apply_branches`
 * lists, the default branch's as it stands now. A merge into any other branch
 * applies nothing: a writer's own branch must not become a way around the rules.
 */
async function mergeRules(deps: WorkerDeps, gh: GitHub, job: PullClosedPayload & { mergeSha: string }, group: NonNullable<Awaited<ReturnType<typeof latestPlanGroup>>>): Promise<{ rules: BaseRules } | { refusal: Refusal }> {
  const asked = job.baseRef && job.defaultBranch ? { baseRef: job.baseRef, defaultBranch: job.defaultBranch } : await gh.getPull({ owner: job.owner, name: job.repo }, job.number);
  if (asked.baseRef === asked.defaultBranch) return { rules: await baseRulesBeforeMerge(deps, gh, group, job.mergeSha) };
  const rules = await defaultBranchRules(deps, gh, group, asked.defaultBranch);
  if (rules.config?.apply_branches?.includes(asked.baseRef)) return { rules };
  return { refusal: { code: "branch-not-applied", neutral: true, message: asked.baseRef, branch: asked.defaultBranch } };
}

/**
 * When a merge queue verified this very commit, its plans (same fingerprints
 * as the approved ones) are applied as they are: no third plan.
 */
async function withQueuePlans(deps: WorkerDeps, repo: string, pullNumber: number, mergeSha: string, admitted: Admitted[]): Promise<Admitted[]> {
  const queue = await verifiedQueueGroup(deps.pool, repo, pullNumber, mergeSha);
  if (!queue) return admitted;
  const runs = await leafRuns(deps.pool, queue.id);
  const plans = await plansOfRuns(deps.pool, runs.map((r) => r.id));
  const verified = admitted.map(({ unit, verify }) => {
    const run = runs.find((r) => sameProject(r, unit.run));
    const plan = run && plans.get(run.id);
    return plan && !plan.consumed_at && !unit.plan.consumed_at && plan.fingerprint === unit.plan.fingerprint ? { unit: { ...unit, queuePlan: plan }, verify: false } : { unit, verify };
  });
  return verified;
}
