import { driftMarkerLine } from "../../github/markers.js";
import { GITHUB_COMMENT_LIMIT } from "../../github/limits.js";
import { rm } from "node:fs/promises";
import path from "node:path";
import { appendAuditEvent } from "../../audit/audit-log.js";
import { lastAppliedSha, recordDriftCheck } from "../../db/drift.js";
import { inTransaction } from "../../db/pool.js";
import { withProjectLocks } from "../../db/project-locks.js";
import { failureMessage } from "../../engines/terraform.js";
import { outDirOf } from "../../run/project-runs.js";
import type { DriftCheckPayload } from "../../jobs/jobs.js";
import { countChanges, type PlanChanges } from "../../plans/changes.js";
import { maskDeep } from "../../plans/mask.js";
import { attributeDiff } from "../../render/attribute-diff.js";
import { ACTION_SYMBOLS, actionLabels } from "../../render/plan-report.js";
import { fenceFor } from "../../render/templates.js";
import type { WorkerDeps } from "../deps.js";
import { maskerFor } from "../masking.js";
import { enqueueDriftNotification } from "../notify.js";
import { identitiesFor } from "../run-identity.js";
import { loadProjects } from "../plan/load-projects.js";

export const DRIFT_LABEL = "plangate:drift";
/** How many resources a drift issue shows with their diff; the rest are counted. */
const SHOWN_RESOURCES = 100;

/** One project's changes from its plans (a cdktf program has one per stack). */
function combine(plans: PlanChanges[]): PlanChanges {
  const resources = plans.flatMap((p) => p.resources);
  return { resources, counts: countChanges(resources), outputs: plans.flatMap((p) => p.outputs ?? []), drift: plans.flatMap((p) => p.drift ?? []) };
}

/**
 * Plans one project at the default branch head. Changes mean the
 * infrastructure differs from the branch (drift): its plangate:drift issue is
 * opened or updated with the diff, and `drift.detected` audited when it
 * starts. A clean plan closes the issue (`drift.resolved`).
 */
export async function driftCheck(deps: WorkerDeps, job: DriftCheckPayload): Promise<void> {
  const [owner, name] = job.repo.split("/") as [string, string];
  const repo = { owner, name };
  const gh = await deps.github.forInstallation(job.installationId);
  const token = () => gh.cloneToken();
  const loaded = await loadProjects(deps.mirrors, repo, job.sha, token);
  const project = loaded.ok ? loaded.config.projects.find((p) => p.name === job.project) : undefined;
  if (!project) return; // gone from the branch since the scan
  const log = deps.log.child({ repo: job.repo, project: project.name, workspace: project.workspace, drift: true });
  const workRoot = path.join(deps.dataDir, "runs", `drift-${job.repo.replace(/\W/g, "_")}-${project.name.replace(/\W/g, "_")}-${Date.now()}`);
  const outcome = await withProjectLocks(deps.pool, [{ repo: job.repo, project: project.name, workspace: project.workspace }], async () => {
    try {
      const checkoutDir = path.join(workRoot, "checkout");
      await deps.mirrors.checkout(repo, job.sha, checkoutDir, token);
      const identity = identitiesFor(gh, repo)(() => ({ repository: job.repo, sha: job.sha, ref: `refs/heads/${job.branch}`, actor: "plangate" }));
      const opened = await deps.runs.open({ checkout: { checkoutDir }, project, phase: "plan", reason: "drift", deadline: deps.sandbox.clock.now() + deps.jobTimeoutMs, identity });
      if (!opened.ok) return { ok: false as const, message: opened.message };
      // A program is synthesized once (no network), then every stack planned: their changes add up, each address under its stack.
      const prepared = await opened.run.prepare();
      if (!prepared.ok) return { ok: false as const, message: prepared.message };
      const changes = [];
      for (const unit of prepared.units) {
        const planned = await opened.run.plan(unit, { outDir: outDirOf(path.join(workRoot, "out"), unit), deadline: deps.sandbox.clock.now() + deps.jobTimeoutMs });
        if (!planned.ok) return { ok: false as const, message: unit.name ? `${unit.name}: ${failureMessage(planned)}` : failureMessage(planned) };
        const unitChanges = planned.changes();
        changes.push(unit.name ? { ...unitChanges, resources: unitChanges.resources.map((r) => ({ ...r, address: `${unit.name}/${r.address}` })) } : unitChanges);
      }
      return { ok: true as const, changes };
    } finally {
      await rm(workRoot, { recursive: true, force: true });
    }
  });
  const marker = driftMarkerLine(project.name, project.workspace);
  const open = (await gh.openIssues(repo, DRIFT_LABEL)).find((i) => i.body.includes(marker));
  const fields = { actor: "plangate", repo: job.repo, project: project.name, workspace: project.workspace, sha: job.sha };
  if (!outcome.ok) {
    log.warn({ message: outcome.message }, "drift check failed to plan");
    await inTransaction(deps.pool, (tx) => recordDriftCheck(tx, { repo: job.repo, project: project.name, workspace: project.workspace, sha: job.sha, status: "failed", issue_number: open?.number ?? null }));
    return;
  }
  const changes = maskDeep(combine(outcome.changes), maskerFor(deps, project.env));
  if (!changes.resources.length) {
    if (open) await gh.updateIssue(repo, open.number, { body: deps.templates.render("drift-issue", { marker, resolved: true, project: project.name, workspace: project.workspace, branch: job.branch, shortSha: job.sha.slice(0, 7) }), state: "closed" });
    await inTransaction(deps.pool, async (tx) => {
      const before = await recordDriftCheck(tx, { repo: job.repo, project: project.name, workspace: project.workspace, sha: job.sha, status: "clean", issue_number: null });
      if (before === "drifted" || open) await appendAuditEvent(tx, { action: "drift.resolved", ...fields, details: { branch: job.branch, issue: open?.number ?? null } });
    });
    return;
  }
  const lastApplied = await lastAppliedSha(deps.pool, job.repo, project.name, project.workspace);
  const labels = actionLabels(deps.templates);
  const resources = changes.resources.slice(0, SHOWN_RESOURCES).map((change) => {
    const diff = attributeDiff(change);
    return { address: change.address, symbol: ACTION_SYMBOLS[change.action], label: labels[change.action], diff, fence: fenceFor(diff) };
  });
  const body = deps.templates
    .render("drift-issue", {
      marker, project: project.name, workspace: project.workspace, branch: job.branch, shortSha: job.sha.slice(0, 7), counts: changes.counts,
      resources, more: changes.resources.length - resources.length, lastApplied: lastApplied?.slice(0, 7),
    })
    .slice(0, GITHUB_COMMENT_LIMIT);
  const issue = open ? (await gh.updateIssue(repo, open.number, { body }), open.number) : await gh.createIssue(repo, deps.templates.render("drift-title", { project: project.name, workspace: project.workspace }).trim(), body, [DRIFT_LABEL]);
  await inTransaction(deps.pool, async (tx) => {
    const before = await recordDriftCheck(tx, { repo: job.repo, project: project.name, workspace: project.workspace, sha: job.sha, status: "drifted", issue_number: issue });
    if (before === "drifted") return;
    await appendAuditEvent(tx, { action: "drift.detected", ...fields, details: { branch: job.branch, issue, ...changes.counts, lastApplied: lastApplied ?? null } });
    await enqueueDriftNotification(tx, deps, { repo: job.repo, project: project.name, workspace: project.workspace, branch: job.branch, sha: job.sha, issue, counts: changes.counts });
  });
}
