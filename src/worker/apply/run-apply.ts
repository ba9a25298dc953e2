import { rm } from "node:fs/promises";
import path from "node:path";
import { appendAuditEvent, type AuditEvent } from "../../audit/audit-log.js";
import { consumePlans } from "../../db/plans.js";
import { inTransaction, type Queryable } from "../../db/pool.js";
import { withProjectLocks } from "../../db/project-locks.js";
import { createRunGroup, setCheckRunId, setOutcome, type ApplyMode, type GroupOutcome, type Refusal, type RunGroup } from "../../db/run-groups.js";
import { closeQueuedRuns, finishRun, groupRuns, interruptRunning, startApplyRun, type RunKey } from "../../db/runs.js";
import { failureMessage } from "../../engines/terraform.js";
import type { GitHub, RepoRef } from "../../github/github.js";
import { enqueue, TASKS, type ReportApplyPayload } from "../../jobs/jobs.js";
import { checkSummary, checkTitle } from "../../render/templates.js";
import type { Logger, WorkerDeps } from "../deps.js";
import { maskerFor } from "../masking.js";
import { enqueueNotification } from "../notify.js";
import { freshVerdict, type Admitted, type FreshResult } from "./apply-gate.js";
import { sameProject, Workspace, type Unit } from "./apply-units.js";
import { releasePullLocks } from "./release-locks.js";
import { identitiesFor, type IdentityParts } from "../run-identity.js";

export const APPLY_CHECK = "plangate/apply";

/** Everything an apply needs to know about where it comes from. */
export interface ApplyContext {
  /** The delivery that asked; one apply group per trigger, so a retried job finds its own. */
  trigger: string;
  installationId: number;
  repo: RepoRef;
  pullNumber: number;
  /** The commit applied: the merge commit on merge, the PR head for /apply. */
  sha: string;
  actor: string;
  mode: ApplyMode;
  log: Logger;
  /** The branch a merge lands on (refs/heads/…); a /apply applies the PR's head. */
  ref?: string;
  /** The reviewers whose approvals the gate counted: named in the apply phase's tokens. */
  approvers?: string[];
}

const full = (ctx: ApplyContext) => `${ctx.repo.owner}/${ctx.repo.name}`;
const auditAs = (ctx: ApplyContext) => (tx: Queryable, event: Omit<AuditEvent, "actor" | "repo" | "pullNumber" | "sha">) =>
  appendAuditEvent(tx, { actor: ctx.actor, repo: full(ctx), pullNumber: ctx.pullNumber, sha: ctx.sha, ...event });

/**
 * Ends an apply group with its outcome, in the caller's transaction: the
 * outcome is stored once, a merged PR's locks go, and the report job is
 * queued, so GitHub hears of it after the commit, retried on its own.
 */
async function conclude(deps: WorkerDeps, tx: Queryable, ctx: ApplyContext, group: RunGroup, outcome: GroupOutcome, keepLocks = false): Promise<boolean> {
  if (!(await setOutcome(tx, group.id, outcome))) return false;
  await enqueueNotification(tx, deps, ctx.installationId, group, outcome);
  if (ctx.mode === "merge" && !keepLocks) await releasePullLocks(tx, full(ctx), ctx.pullNumber, ctx.actor, "merged");
  const payload: ReportApplyPayload = { installationId: ctx.installationId, groupId: group.id };
  await enqueue(tx, { task: TASKS.reportApply, payload, jobKey: `report-apply:${group.id}`, maxAttempts: 12 });
  return true;
}

const newApplyGroup = (ctx: ApplyContext) => ({ kind: "apply" as const, trigger_id: ctx.trigger, installation_id: ctx.installationId, repo: full(ctx), pull_number: ctx.pullNumber, sha: ctx.sha, author: null });

/** The gate (or the verify step) refused: nothing is applied; audited as apply.denied and reported. */
export async function refuseApply(deps: WorkerDeps, ctx: ApplyContext, refusal: Refusal, existing?: RunGroup): Promise<void> {
  await inTransaction(deps.pool, async (tx) => {
    const group = existing ?? (await createRunGroup(tx, newApplyGroup(ctx), [])).group;
    if (!(await conclude(deps, tx, ctx, group, { mode: ctx.mode, result: "refused", ...refusal }))) return;
    await closeQueuedRuns(tx, group.id, "denied");
    await auditAs(ctx)(tx, { action: "apply.denied", details: { ...refusal, mode: ctx.mode } });
  });
  ctx.log.info({ code: refusal.code }, "apply refused");
}

/**
 * Applies the admitted units at ctx.sha: prepare (checkout, synth), verify
 * (units marked so are planned afresh; nothing is applied unless every fresh
 * plan has its approved fingerprint), apply in dependency order stopping at
 * the first failure, then report. Holds the project locks of every unit
 * throughout, so no other plan or apply of these projects overlaps it.
 */
export async function runApply(deps: WorkerDeps, gh: GitHub, ctx: ApplyContext, admitted: Admitted[]): Promise<void> {
  const units = admitted.map((a) => a.unit);
  const { group, runs, created } = await inTransaction(deps.pool, (tx) =>
    createRunGroup(tx, newApplyGroup(ctx), units.map((u) => ({ project: u.run.project, dir: u.run.dir, engine: u.run.engine, workspace: u.run.workspace, config: u.run.config }))),
  );
  if (group.outcome) return; // an earlier attempt finished and queued its report
  if (!created && runs.some((r) => r.status !== "queued")) {
    // The previous attempt died midway: what it was applying is unknown, so everything not yet applied is planned afresh.
    const done = await interrupted(deps, ctx, group, units);
    const rest = admitted.filter((a) => !done.has(a.unit.run.id)).map((a) => ({ ...a, verify: true }));
    if (rest.length) await runApply(deps, gh, { ...ctx, trigger: `${ctx.trigger}:after-${group.id}` }, rest);
    return;
  }
  const applyRun = (unit: Unit) => runs.find((r) => sameProject(r, unit.run))!;
  await openCheck(deps, gh, ctx, group, units);
  const keys = units.map((u) => ({ repo: full(ctx), project: u.run.project, workspace: u.run.workspace }));
  await withProjectLocks(deps.pool, keys, async () => {
    const workRoot = path.join(deps.dataDir, "runs", `apply-${group.id}`);
    try {
      const identities = identitiesFor(gh, ctx.repo);
      const identity = (unit: Unit): IdentityParts => ({
        repository: full(ctx),
        pullRequest: ctx.pullNumber,
        sha: ctx.sha,
        ref: ctx.ref ?? `refs/pull/${ctx.pullNumber}/head`,
        actor: ctx.actor,
        runId: applyRun(unit).id,
        approved: { fingerprint: unit.plan.fingerprint, approvers: ctx.approvers ?? [] },
      });
      const workspace = new Workspace(deps, path.join(workRoot, "checkout"), path.join(workRoot, "out"), ctx.mode, (unit) => identities(() => identity(unit)));
      await deps.mirrors.checkout(ctx.repo, ctx.sha, workspace.checkoutDir, () => gh.cloneToken());
      // Messages from synth and terraform may hold values of the projects' env: masked before they are kept or shown.
      const mask = maskerFor(deps, [...new Set(units.flatMap((u) => u.rules.env))]);
      const problem = await workspace.prepare(units);
      if (problem) return refuseApply(deps, ctx, { code: "prepare-failed", message: mask(problem) }, group);
      const refusal = await verify(workspace, admitted, mask);
      if (refusal) return refuseApply(deps, ctx, refusal, group);
      await applyInOrder(deps, ctx, group, admitted.map((a) => ({ ...a, run: applyRun(a.unit) })), workspace);
    } finally {
      await rm(workRoot, { recursive: true, force: true });
    }
  });
}

/** Plans afresh every unit that must be verified (stopping at the first that fails); a refusal when one fails or plans another change. */
async function verify(workspace: Workspace, admitted: Admitted[], mask: (text: string) => string): Promise<Refusal | undefined> {
  const results: FreshResult[] = [];
  for (const { unit } of admitted.filter((a) => a.verify)) {
    const compared = await workspace.planAfresh(unit);
    results.push({ unit, compared });
    if (!compared.fresh.ok) break;
  }
  return freshVerdict(results, mask);
}

async function applyInOrder(deps: WorkerDeps, ctx: ApplyContext, group: RunGroup, units: (Admitted & { run: RunKey })[], workspace: Workspace): Promise<void> {
  const audit = auditAs(ctx);
  for (const [index, { unit, verify, run }] of units.entries()) {
    await inTransaction(deps.pool, async (tx) => {
      await startApplyRun(tx, run.id, unit.plan.fingerprint);
      await audit(tx, { action: "apply.started", project: run.project, workspace: run.workspace, runId: run.id, details: { fingerprint: unit.plan.fingerprint, planRunId: unit.run.id, verified: verify || !!unit.queuePlan } });
    });
    const applied = verify ? await workspace.applyFresh(unit) : await workspace.applyStored(unit);
    const output = maskerFor(deps, unit.rules.env)(applied.output);
    const last = !applied.ok || index === units.length - 1;
    await inTransaction(deps.pool, async (tx) => {
      await finishRun(tx, run.id, applied.ok ? { status: "succeeded", output } : { status: "failed", output, error: { tool: applied.tool, stage: applied.stage, message: failureMessage(applied), timedOut: applied.timedOut } });
      await consumePlans(tx, [unit.run.id], `apply:${group.id}`);
      await audit(tx, { action: applied.ok ? "apply.succeeded" : "apply.failed", project: run.project, workspace: run.workspace, runId: run.id, details: { fingerprint: unit.plan.fingerprint, planRunId: unit.run.id } });
      if (!last) return;
      for (const skipped of await closeQueuedRuns(tx, group.id, "skipped")) {
        await audit(tx, { action: "apply.denied", project: skipped.project, workspace: skipped.workspace, runId: skipped.id, details: { code: "skipped", after: run.project } });
      }
      await conclude(deps, tx, ctx, group, { mode: ctx.mode, result: applied.ok ? "applied" : "failed" });
    });
    if (last) return;
  }
}

/**
 * A retried apply job found its group half done: the runs left running are
 * interrupted (audited, reported), their plans spent until a fresh plan
 * matches them. Returns the plan run ids already applied.
 */
async function interrupted(deps: WorkerDeps, ctx: ApplyContext, group: RunGroup, units: Unit[]): Promise<Set<number>> {
  return inTransaction(deps.pool, async (tx) => {
    const stopped = await interruptRunning(tx, group.id);
    await closeQueuedRuns(tx, group.id, "skipped");
    const spent = units.filter((u) => stopped.some((r) => sameProject(r, u.run)));
    await consumePlans(tx, spent.map((u) => u.run.id), `interrupted:${group.id}`);
    for (const run of stopped) {
      await appendAuditEvent(tx, { action: "apply.interrupted", actor: "plangate", repo: full(ctx), pullNumber: ctx.pullNumber, project: run.project, workspace: run.workspace, sha: ctx.sha, runId: run.id, details: { mode: ctx.mode } });
    }
    const applied = (await groupRuns(tx, group.id)).filter((r) => r.status === "succeeded");
    const done = new Set(units.filter((u) => applied.some((r) => sameProject(r, u.run))).map((u) => u.run.id));
    // The interruption is reported now; a merged PR's locks stay for the fresh attempt that follows, which releases them.
    await conclude(deps, tx, ctx, group, { mode: ctx.mode, result: "interrupted" }, done.size < units.length);
    return done;
  });
}

/** Opens plangate/apply in progress; best effort: the report creates it completed if this fails. */
async function openCheck(deps: WorkerDeps, gh: GitHub, ctx: ApplyContext, group: RunGroup, units: Unit[]): Promise<void> {
  if (group.check_run_id) return;
  try {
    const checkRunId = await gh.createCheckRun(ctx.repo, APPLY_CHECK, ctx.sha, {
      status: "in_progress",
      detailsUrl: deps.runLinks?.url(group.id),
      output: { title: checkTitle(deps.templates, "apply-progress", { count: units.length }), summary: checkSummary(deps.templates, "progress", { projects: units.map((u) => u.run.project) }) },
    });
    await setCheckRunId(deps.pool, group.id, checkRunId);
  } catch (error) {
    ctx.log.warn({ err: error }, "could not open plangate/apply; the report will create it");
  }
}

/** The first line of a system error, bounded, as a refusal shows it. */
export const systemErrorMessage = (error: unknown) => String((error as Error).message ?? error).split("\n", 1)[0]!.slice(0, 500);

/** A job's attempt: its number and how many it gets. */
export interface Attempt {
  number: number;
  max: number;
}

/**
 * Runs an apply job's body; when its last attempt fails with a system error
 * (git, the database, a crash of plangate itself), the apply ends refused
 * with that error instead of staying unanswered, and its locks are released.
 */
export async function answerEvenIfBroken(deps: WorkerDeps, ctx: ApplyContext, attempt: Attempt, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    if (attempt.number < attempt.max) throw error;
    ctx.log.error({ err: error }, "apply failed with a system error on its last attempt");
    await refuseApply(deps, ctx, { code: "system-error", message: systemErrorMessage(error) });
  }
}
