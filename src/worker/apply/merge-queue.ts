import { markerLine, queueMarker } from "../../github/markers.js";
import path from "node:path";
import { rm } from "node:fs/promises";
import { appendAuditEvent } from "../../audit/audit-log.js";
import { storePlan } from "../../db/plans.js";
import { inTransaction } from "../../db/pool.js";
import { withProjectLocks } from "../../db/project-locks.js";
import { createRunGroup, latestPlanGroup, setOutcome, type GroupOutcome, type Refusal, type RunGroup } from "../../db/run-groups.js";
import { finishRun, type RunKey } from "../../db/runs.js";
import { failureMessage } from "../../engines/terraform.js";
import type { CheckConclusion, GitHub, RepoRef } from "../../github/github.js";
import type { MergeGroupPayload } from "../../jobs/jobs.js";
import { queuedPullNumber } from "../../jobs/merge-queue-ref.js";
import { GITHUB_CHECK_TEXT_LIMIT } from "../../github/limits.js";
import { clipText } from "../../text/clip-text.js";
import { checkTitle, fenceFor } from "../../render/templates.js";
import { identitiesFor } from "../run-identity.js";
import { APPROVAL_CHECK } from "../approval/approval-check.js";
import { loadHeadPlans } from "../../db/head-plans.js";
import { approvalStatus } from "../approval/approval-status.js";
import { defaultBranchRules } from "../base-rules.js";
import type { WorkerDeps } from "../deps.js";
import { maskerFor } from "../masking.js";
import { PLAN_CHECK } from "../plan/plan-pull-request.js";
import { applyGate, freshVerdict, queueLooksAhead, queueVerdict, type Admitted, type FreshResult } from "./apply-gate.js";
import { unaccountedAhead } from "./queue-ahead.js";
import { systemErrorMessage, type Attempt } from "./run-apply.js";
import type { Compared } from "../../run/project-runs.js";
import { reviewedUnits, sameProject, Workspace, type Unit } from "./apply-units.js";

/**
 * merge_group.checks_requested: plans the queue commit and sets
 * `plangate/plan` and `plangate/approval` on it. Success only when every
 * project plans with the fingerprint that was approved and the approvals
 * hold (the same gate as a merge); otherwise failure with the reason, so
 * GitHub takes the PR out of the queue, and the PR is told why. A PR that
 * changes nothing plangate plans gets neutral checks: nothing blocks the queue.
 */
export async function verifyMergeGroup(deps: WorkerDeps, job: MergeGroupPayload, attempt: Attempt = { number: 1, max: 1 }): Promise<void> {
  try {
    await verify(deps, job);
  } catch (error) {
    if (attempt.number < attempt.max) throw error;
    // The queue must never wait on plangate: a last failed attempt fails both checks, saying why.
    deps.log.error({ err: error }, "merge queue verification failed with a system error on its last attempt");
    const repoName = `${job.owner}/${job.repo}`;
    const { group } = await inTransaction(deps.pool, (tx) =>
      createRunGroup(tx, { kind: "queue", trigger_id: job.trigger, installation_id: job.installationId, repo: repoName, pull_number: queuedPullNumber(job.headRef)!, sha: job.headSha, author: null }, []),
    );
    const outcome = group.outcome ?? ({ mode: "queue", result: "refused", code: "system-error", message: systemErrorMessage(error) } as const);
    if (!group.outcome) await record(deps, group, outcome);
    await report(deps, await deps.github.forInstallation(job.installationId), { owner: job.owner, name: job.repo }, group, outcome);
  }
}

async function verify(deps: WorkerDeps, job: MergeGroupPayload): Promise<void> {
  const number = queuedPullNumber(job.headRef)!;
  const repo = { owner: job.owner, name: job.repo };
  const repoName = `${job.owner}/${job.repo}`;
  const gh = await deps.github.forInstallation(job.installationId);
  const pull = await gh.getPull(repo, number);
  const plan = await latestPlanGroup(deps.pool, repoName, number, pull.headSha);
  // The default branch's rules as they stand: the queue commit's first parent may hold the config of a PR ahead of this one.
  const base = plan && (await defaultBranchRules(deps, gh, plan, pull.defaultBranch));
  // The head's runs and plans, read once for the approvals and the units.
  const head = plan && (await loadHeadPlans(deps.pool, plan));
  const gate = applyGate({
    mode: "queue",
    planned: !!plan,
    everPlanned: !!plan,
    status: plan && base && head ? await approvalStatus(deps, gh, plan, base, head) : undefined,
    units: plan && base && head ? await reviewedUnits(deps, plan, "merge", base, undefined, head) : [],
  });
  // The pull requests ahead of this one in the queue are in this commit too: each of their changes must be accounted for.
  // A PR with no plan at all (neutral so far) must change no project either: its own change is checked like theirs.
  const ahead = queueLooksAhead(gate) ? await unaccountedAhead(deps, gh, repo, job.headSha, job.baseRef, plan ? undefined : number) : undefined;
  const decision = queueVerdict(gate, ahead);
  const units = decision.allow ? decision.units.map((a) => a.unit) : [];
  const { group, runs } = await inTransaction(deps.pool, (tx) =>
    createRunGroup(
      tx,
      { kind: "queue", trigger_id: job.trigger, installation_id: job.installationId, repo: repoName, pull_number: number, sha: job.headSha, author: pull.author, policies: plan?.policies, base_ref: plan?.base_ref, base_sha: plan?.base_sha },
      units.map((u) => ({ project: u.run.project, dir: u.run.dir, engine: u.run.engine, workspace: u.run.workspace, config: u.run.config, rules: u.rules })),
    ),
  );
  // A retried job reports what an earlier attempt decided.
  const outcome = group.outcome ?? (decision.allow ? await planQueueCommit(deps, gh, repo, group, runs, decision.units, job.headRef) : { mode: "queue" as const, result: "refused" as const, ...decision.refusal });
  if (!group.outcome) await record(deps, group, outcome);
  await report(deps, gh, repo, group, outcome);
}

/** Plans every admitted project at the queue commit (under the project locks) and compares each fingerprint with the approved one. */
async function planQueueCommit(deps: WorkerDeps, gh: GitHub, repo: RepoRef, group: RunGroup, runs: RunKey[], admitted: Admitted[], queueRef: string): Promise<GroupOutcome> {
  const refuse = (refusal: Refusal): GroupOutcome => ({ mode: "queue", result: "refused", ...refusal });
  const keys = admitted.map(({ unit }) => ({ repo: group.repo, project: unit.run.project, workspace: unit.run.workspace }));
  return withProjectLocks(deps.pool, keys, async () => {
    const workRoot = path.join(deps.dataDir, "runs", `queue-${group.id}`);
    try {
      const identities = identitiesFor(gh, repo);
      const identity = (unit: Unit) =>
        identities(() => ({ repository: group.repo, pullRequest: group.pull_number ?? undefined, sha: group.sha, ref: queueRef.startsWith("refs/") ? queueRef : `refs/heads/${queueRef}`, actor: group.author ?? "plangate", runId: runs.find((r) => sameProject(r, unit.run))!.id }));
      const workspace = new Workspace(deps, path.join(workRoot, "checkout"), path.join(workRoot, "out"), "merge_group", identity);
      await deps.mirrors.checkout(repo, group.sha, workspace.checkoutDir, () => gh.cloneToken());
      const mask = maskerFor(deps, [...new Set(admitted.flatMap((a) => a.unit.rules.env))]);
      const problem = await workspace.prepare(admitted.map((a) => a.unit));
      if (problem) return refuse({ code: "prepare-failed", message: mask(problem) });
      const results: FreshResult[] = [];
      for (const { unit } of admitted) {
        const run = runs.find((r) => sameProject(r, unit.run))!;
        const compared = await workspace.planAfresh(unit);
        await storeQueuePlan(deps, run, unit, compared);
        results.push({ unit, compared });
        if (!compared.fresh.ok) break;
      }
      const refusal = freshVerdict(results, mask);
      return refusal ? refuse(refusal) : { mode: "queue", result: "verified" };
    } finally {
      await rm(workRoot, { recursive: true, force: true });
    }
  });
}

/** The queue commit's plan of one project, kept (sealed) so that the merge applies it instead of planning a third time. */
async function storeQueuePlan(deps: WorkerDeps, run: RunKey, unit: Unit, { fresh, matches }: Compared): Promise<void> {
  const fields = { actor: "plangate", repo: run.repo, pullNumber: run.pull_number, project: run.project, workspace: run.workspace, sha: run.sha, runId: run.id };
  await inTransaction(deps.pool, async (tx) => {
    if (!fresh.ok) {
      await finishRun(tx, run.id, { status: "failed", output: fresh.output, error: { tool: fresh.tool, stage: fresh.stage, message: failureMessage(fresh), timedOut: fresh.timedOut } });
      await appendAuditEvent(tx, { action: "plan.failed", ...fields, details: { mergeQueue: true, stage: fresh.stage } });
      return;
    }
    const changes = fresh.changes();
    await storePlan(tx, run.id, fresh.sealed(), changes, fresh.fingerprint());
    await finishRun(tx, run.id, { status: "succeeded", summary: changes.counts, output: fresh.output() });
    await appendAuditEvent(tx, { action: "plan.succeeded", ...fields, details: { mergeQueue: true, fingerprint: fresh.fingerprint(), approved: matches, ...changes.counts } });
  });
}

async function record(deps: WorkerDeps, group: RunGroup, outcome: GroupOutcome): Promise<void> {
  await inTransaction(deps.pool, async (tx) => {
    if (!(await setOutcome(tx, group.id, outcome))) return;
    const verified = outcome.result === "verified" || (outcome.result === "refused" && !!outcome.neutral);
    await appendAuditEvent(tx, {
      action: "approval.changed",
      actor: "plangate",
      repo: group.repo,
      pullNumber: group.pull_number,
      sha: group.sha,
      details: { mergeQueue: true, met: verified, ...(outcome.result === "refused" ? { code: outcome.code, missing: outcome.missing, mismatches: outcome.mismatches } : {}) },
    });
  });
}

/** Both required checks on the queue commit, and a comment on the PR when it leaves the queue. */
async function report(deps: WorkerDeps, gh: GitHub, repo: RepoRef, group: RunGroup, outcome: GroupOutcome): Promise<void> {
  const refused = outcome.result === "refused" && !outcome.neutral;
  const conclusion: CheckConclusion = refused ? "failure" : outcome.result === "verified" ? "success" : "neutral";
  const runUrl = deps.runLinks?.url(group.id);
  const marker = queueMarker(group.id);
  const body = refused
    ? deps.templates.render("queue-refused", { ...outcome, fence: fenceFor(outcome.output ?? ""), marker: markerLine(marker), queue: true, shortSha: group.sha.slice(0, 7), runUrl })
    : "";
  const title = checkTitle(deps.templates, refused ? "queue-refused" : outcome.result === "verified" ? "queue-verified" : "queue-nothing");
  const summary = refused ? body : title;
  for (const name of [PLAN_CHECK, APPROVAL_CHECK]) {
    await gh.createCheckRun(repo, name, group.sha, { status: "completed", conclusion, detailsUrl: runUrl, output: { title, summary: clipText(summary, GITHUB_CHECK_TEXT_LIMIT) } });
  }
  if (refused && group.pull_number !== null) await gh.syncComments(repo, group.pull_number, marker, [body]);
}
