import { rm } from "node:fs/promises";
import path from "node:path";
import { appendAuditEvent, type AuditEvent } from "../../audit/audit-log.js";
import { consumePlans, plansOfRuns } from "../../db/plans.js";
import { inTransaction, type Queryable } from "../../db/pool.js";
import { denyOpenApplies, failQueuedRuns, finishRun, headRuns, markInterrupted, runsById, startApplyRun, type Run } from "../../db/runs.js";
import { createRunGroup, setCheckRunId, type RunGroup } from "../../db/run-groups.js";
import type { GitHub, RepoRef } from "../../github/github.js";
import { failureMessage } from "../../engines/terraform.js";
import { changeFingerprint } from "../../plans/fingerprint.js";
import { checkSummary, checkTitle, fenceFor } from "../../render/templates.js";
import { clipText } from "../../render/plan-check.js";
import type { WorkerDeps } from "../deps.js";
import { maskerFor } from "../masking.js";
import type { BaseRules } from "../../settings/rules.js";
import { rulesOf } from "../base-rules.js";
import { releasePullLocks } from "./release-locks.js";
import { orderUnits, Workspace, type Unit } from "./apply-units.js";

export const APPLY_CHECK = "plangate/apply";
export const APPLY_MARKER = "plangate:apply";
const OUTPUT_LIMIT = 20_000;

/** Everything an apply needs to know about where it comes from. */
export interface ApplyContext {
  trigger: string;
  installationId: number;
  repo: RepoRef;
  pullNumber: number;
  /** The commit applied: the merge commit on merge, the PR head for /apply. */
  sha: string;
  actor: string;
  onMerge: boolean;
}

const full = (ctx: ApplyContext) => `${ctx.repo.owner}/${ctx.repo.name}`;

/**
 * The reviewed plans at the group's commit that this kind of apply may apply
 * under `base`'s rules (apply mode, depends_on, env), in dependency order.
 */
export async function reviewedUnits(deps: WorkerDeps, group: RunGroup, onMerge: boolean, base: BaseRules, select?: (run: Run) => boolean): Promise<Unit[]> {
  const leaves = await headRuns(deps.pool, group);
  const plans = await plansOfRuns(deps.pool, leaves.map((r) => r.id));
  const parentIds = leaves.map((r) => r.parent_run_id).filter((id): id is number => id !== null);
  const parents = new Map((await runsById(deps.pool, parentIds)).map((r) => [r.id, r]));
  const modes = onMerge ? ["on_merge", "both"] : ["command", "both"];
  return orderUnits(
    leaves
      .map((run) => ({ run, rules: rulesOf(base, group, run) }))
      .filter(({ run, rules }) => modes.includes(rules.apply) && (!select || select(run)))
      .flatMap(({ run, rules }) => {
        const plan = plans.get(run.id);
        return plan ? [{ run, plan, rules, baseProject: run.parent_run_id ? parents.get(run.parent_run_id)!.project : run.project }] : [];
      }),
  );
}

/** Plans with nothing to change are not applied. */
export const hasChanges = (unit: Unit) => unit.plan.changes.resources.length > 0;

/** Records a refusal: comment, failed plangate/apply, apply.denied; on merge the PR's locks go in the same transaction. */
export async function denyApply(deps: WorkerDeps, gh: GitHub, ctx: ApplyContext, reason: string, mismatches: { project: string; approved: string; fresh: string }[] = [], checkRunId?: number): Promise<void> {
  const body = deps.templates.render("apply-denied", { marker: `<!-- ${APPLY_MARKER} -->`, shortSha: ctx.sha.slice(0, 7), onMerge: ctx.onMerge, reason, mismatches });
  await gh.createComment(ctx.repo, ctx.pullNumber, body);
  const output = { title: checkTitle(deps.templates, "apply-denied"), summary: clipText(body) };
  if (checkRunId) await gh.updateCheckRun(ctx.repo, checkRunId, { status: "completed", conclusion: "failure", output });
  else await gh.createCheckRun(ctx.repo, APPLY_CHECK, ctx.sha, { status: "completed", conclusion: "failure", output });
  await inTransaction(deps.pool, async (tx) => {
    await denyOpenApplies(tx, full(ctx), ctx.sha);
    await appendAuditEvent(tx, { action: "apply.denied", actor: ctx.actor, repo: full(ctx), pullNumber: ctx.pullNumber, sha: ctx.sha, details: { reason, mismatches, onMerge: ctx.onMerge } });
    if (ctx.onMerge) await releasePullLocks(tx, full(ctx), ctx.pullNumber, ctx.actor, "merged");
  });
}

interface UnitResult {
  unit: Unit;
  applyRun: Run;
  status: "succeeded" | "failed" | "skipped";
  output: string;
}

/**
 * Applies reviewed plans at ctx.sha. On merge every unit is planned again at
 * the merge commit first, and nothing is applied unless each fresh plan has
 * the reviewed plan's fingerprint. Units apply in dependency order and stop
 * at the first failure. Returns false when the apply was refused or failed.
 */
export async function applyUnits(deps: WorkerDeps, gh: GitHub, ctx: ApplyContext, units: Unit[]): Promise<boolean> {
  const audit = (tx: Queryable, event: Omit<AuditEvent, "actor" | "repo" | "pullNumber" | "sha">) =>
    appendAuditEvent(tx, { actor: ctx.actor, repo: full(ctx), pullNumber: ctx.pullNumber, sha: ctx.sha, ...event });

  const { group, runs, created } = await inTransaction(deps.pool, (tx) =>
    createRunGroup(
      tx,
      { kind: "apply", trigger_id: ctx.trigger, installation_id: ctx.installationId, repo: full(ctx), pull_number: ctx.pullNumber, sha: ctx.sha, author: null },
      units.map((u) => ({ project: u.run.project, dir: u.run.dir, engine: u.run.engine, workspace: u.run.workspace, config: u.run.config })),
    ),
  );
  // A previous attempt of this very apply died midway: never apply again blindly.
  if (!created && runs.some((r) => r.status === "running" || r.status === "succeeded" || r.status === "failed")) {
    await interrupted(deps, gh, ctx, group, runs, units);
    return false;
  }
  const checkRunId = group.check_run_id ?? (await gh.createCheckRun(ctx.repo, APPLY_CHECK, ctx.sha, { status: "in_progress", output: { title: checkTitle(deps.templates, "apply-progress", { count: units.length }), summary: checkSummary(deps.templates, "progress", { projects: units.map((u) => u.run.project) }) } }));
  await setCheckRunId(deps.pool, group.id, checkRunId);
  const applyRun = (unit: Unit) => runs.find((r) => r.project === unit.run.project && r.workspace === unit.run.workspace)!;

  const workRoot = path.join(deps.dataDir, "runs", `apply-${group.id}`);
  try {
    const [owner, name] = [ctx.repo.owner, ctx.repo.name];
    const workspace = new Workspace(deps, path.join(workRoot, "checkout"), path.join(workRoot, "out"));
    await deps.mirrors.checkout({ owner, name }, ctx.sha, workspace.checkoutDir, () => gh.cloneToken());
    const problem = await workspace.prepare(units);
    if (problem) {
      await denyApply(deps, gh, ctx, `The commit could not be prepared for apply: ${problem}`, [], checkRunId);
      return false;
    }
    if (ctx.onMerge) {
      const mismatches: { project: string; approved: string; fresh: string }[] = [];
      for (const unit of units) {
        const fresh = await workspace.planAgain(unit);
        const fingerprint = fresh.ok ? changeFingerprint(fresh.planJson) : `plan failed: ${fresh.stage}`;
        if (fingerprint !== unit.plan.fingerprint) mismatches.push({ project: unit.run.project, approved: unit.plan.fingerprint.slice(0, 12), fresh: fingerprint.slice(0, 12) });
      }
      if (mismatches.length) {
        await denyApply(deps, gh, ctx, "The merge commit's plan differs from the plan that was approved.", mismatches, checkRunId);
        return false;
      }
    }

    const results: UnitResult[] = [];
    let failed = false;
    for (const unit of units) {
      const run = applyRun(unit);
      if (failed) {
        results.push({ unit, applyRun: run, status: "skipped", output: "" });
        continue;
      }
      await inTransaction(deps.pool, async (tx) => {
        await startApplyRun(tx, run.id, unit.plan.fingerprint);
        await audit(tx, { action: "apply.started", project: run.project, workspace: run.workspace, runId: run.id, details: { fingerprint: unit.plan.fingerprint, planRunId: unit.run.id } });
      });
      const applied = ctx.onMerge ? await workspace.applyFresh(unit) : await workspace.applyStored(unit);
      const outcome = { ...applied, output: maskerFor(deps, unit.rules.env)(applied.output) };
      failed = !outcome.ok;
      results.push({ unit, applyRun: run, status: outcome.ok ? "succeeded" : "failed", output: outcome.output });
      const last = failed || unit === units[units.length - 1];
      await inTransaction(deps.pool, async (tx) => {
        await finishRun(tx, run.id, outcome.ok ? { status: "succeeded", output: outcome.output } : { status: "failed", output: outcome.output, error: { stage: outcome.stage, message: failureMessage(outcome), timedOut: outcome.timedOut } });
        await consumePlans(tx, [unit.run.id], `apply:${group.id}`);
        await audit(tx, { action: outcome.ok ? "apply.succeeded" : "apply.failed", project: run.project, workspace: run.workspace, runId: run.id, details: { fingerprint: unit.plan.fingerprint, planRunId: unit.run.id } });
        // On merge the PR's locks end with its apply, in the same transaction as the final state.
        if (last && ctx.onMerge) await releasePullLocks(tx, full(ctx), ctx.pullNumber, ctx.actor, "merged");
        if (last && failed) await failQueuedRuns(tx, group.id, { stage: "skipped", message: `not applied: ${run.project} failed first` });
      });
    }
    await reportApply(deps, gh, ctx, checkRunId, results);
    return !failed;
  } finally {
    await rm(workRoot, { recursive: true, force: true });
  }
}

async function reportApply(deps: WorkerDeps, gh: GitHub, ctx: ApplyContext, checkRunId: number, results: UnitResult[]): Promise<void> {
  const failed = results.some((r) => r.status === "failed");
  const units = results.map((r) => {
    const output = r.output.trim().slice(-OUTPUT_LIMIT);
    return {
      project: r.unit.run.project,
      workspace: r.unit.run.workspace,
      failed: r.status === "failed",
      resultText: { succeeded: "✅ applied", failed: "❌ failed", skipped: "⏭️ not applied (an earlier project failed)" }[r.status],
      output,
      fence: fenceFor(output),
    };
  });
  const body = deps.templates.render("apply-result", { marker: `<!-- ${APPLY_MARKER} -->`, shortSha: ctx.sha.slice(0, 7), onMerge: ctx.onMerge, failed, units });
  await gh.createComment(ctx.repo, ctx.pullNumber, clipText(body, 65_536));
  await gh.updateCheckRun(ctx.repo, checkRunId, {
    status: "completed",
    conclusion: failed ? "failure" : "success",
    output: { title: checkTitle(deps.templates, "apply-done", { failed, count: units.length }), summary: clipText(checkSummary(deps.templates, "apply-done", { units })) },
  });
}

/** A retried apply job: mark the runs interrupted, tell the PR, audit; apply nothing. */
async function interrupted(deps: WorkerDeps, gh: GitHub, ctx: ApplyContext, group: RunGroup, runs: Run[], units: Unit[]): Promise<void> {
  const stopped = runs.filter((r) => r.status === "running" || r.status === "queued");
  await inTransaction(deps.pool, async (tx) => {
    // The reviewed plans are spent: state may have changed, so a later apply must plan again.
    await consumePlans(tx, units.map((u) => u.run.id), `interrupted:${group.id}`);
    for (const run of stopped) {
      await markInterrupted(tx, run.id);
      await appendAuditEvent(tx, { action: "apply.interrupted", actor: "plangate", repo: full(ctx), pullNumber: ctx.pullNumber, project: run.project, workspace: run.workspace, sha: ctx.sha, runId: run.id, details: { wasRunning: run.status === "running" } });
    }
  });
  const body = deps.templates.render("apply-interrupted", { marker: `<!-- ${APPLY_MARKER} -->`, shortSha: ctx.sha.slice(0, 7), projects: stopped.map((r) => r.project) });
  await gh.createComment(ctx.repo, ctx.pullNumber, body);
  const output = { title: checkTitle(deps.templates, "apply-interrupted"), summary: clipText(body) };
  if (group.check_run_id) await gh.updateCheckRun(ctx.repo, group.check_run_id, { status: "completed", conclusion: "failure", output });
  else await gh.createCheckRun(ctx.repo, APPLY_CHECK, ctx.sha, { status: "completed", conclusion: "failure", output });
}


