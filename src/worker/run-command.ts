import { appendAuditEvent, type AuditAction } from "../audit/audit-log.js";
import { inTransaction } from "../db/pool.js";
import { forkNotice, isFork } from "../jobs/fork-notice.js";
import type { CommandPayload } from "../jobs/jobs.js";
import { CONFIG_FILE } from "../settings/load-repo-config.js";
import type { ProjectConfig } from "../settings/repo-config.js";
import { consumePullPlans } from "../db/plans.js";
import { type Run } from "../db/runs.js";
import { hasRunGroup, latestPlanGroup } from "../db/run-groups.js";
import { applyUnits, denyApply, hasChanges, reviewedUnits, type ApplyContext } from "./apply/apply.js";
import { approvalStatus } from "./approval/approval-check.js";
import type { WorkerDeps } from "./deps.js";
import { releasePullLocks } from "./apply/release-locks.js";
import { baseRulesNow } from "./base-rules.js";
import { loadBranchRules, loadProjects } from "./plan/load-projects.js";
import { effectivePolicies, effectiveRules, type BaseRules, type ProjectRules } from "../settings/rules.js";
import { planPullRequest } from "./plan/plan-pull-request.js";
import { postNotice } from "./post-notice.js";

const WRITERS = new Set(["admin", "maintain", "write"]);

function approvalText(approvals: ProjectRules["approvals"]): string {
  const who = [...approvals.teams.map((t) => `team ${t}`), ...approvals.users].join(", ");
  const destroy = approvals.destroy_required !== undefined ? `; ${approvals.destroy_required} on destroy` : "";
  return `${approvals.required}${who ? ` from ${who}` : ""}${destroy}`;
}

/** /help's view of a project: its effective rules, each with where it came from. */
function helpProject(base: BaseRules, p: ProjectConfig, listed: boolean) {
  const { rules, sources } = effectiveRules(base, p, listed);
  return {
    ...p,
    approvalText: approvalText(rules.approvals),
    applyText: rules.apply,
    envText: rules.env.join(", "),
    dependsText: rules.depends_on.join(", "),
    sources,
  };
}

/** Runs an accepted comment command: acknowledge, authorise, audit, then act. */
export async function runCommand(deps: WorkerDeps, job: CommandPayload): Promise<void> {
  const repo = { owner: job.owner, name: job.repo };
  const gh = await deps.github.forInstallation(job.installationId);
  const reply = (body: string) => gh.createComment(repo, job.number, body);
  const audit = (action: AuditAction, sha: string | null, details: Record<string, unknown>) =>
    inTransaction(deps.pool, (tx) =>
      appendAuditEvent(tx, { action, actor: job.actor, repo: `${job.owner}/${job.repo}`, pullNumber: job.number, sha, details: { command: job.command, ...details } }),
    );

  // A retried job (its worker died) must not acknowledge or audit the comment twice.
  const retry = await hasRunGroup(deps.pool, job.trigger);
  if (!retry) await gh.addReaction(repo, job.commentId, "eyes");
  const pull = await gh.getPull(repo, job.number);
  if (job.command !== "help") {
    const permission = await gh.permissionOf(repo, job.actor);
    if (!WRITERS.has(permission)) {
      await audit("command.rejected", pull.headSha, { reason: "permission", permission, selector: job.selector });
      await reply(deps.templates.render("command-reply", { reason: "permission", actor: job.actor, command: job.command, permission }));
      return;
    }
  }
  if (!retry) await audit("command.received", pull.headSha, { selector: job.selector, commentId: job.commentId });

  if (job.command === "help") {
    const token = () => gh.cloneToken();
    const loaded = await loadProjects(deps.mirrors, repo, pull.headSha, token);
    const base = await loadBranchRules(deps.mirrors, repo, pull.baseRef, token);
    const rulesView = { baseRef: pull.baseRef, baseSha: base.sha.slice(0, 7), baseState: base.state, basePolicies: base.config?.policies.length ?? 0 };
    const view = loaded.ok
      ? {
          ...loaded.config,
          projects: loaded.config.projects.map((p) => helpProject(base, p, loaded.config.projectsListed)),
          policies: effectivePolicies(base, loaded.config),
        }
      : { problems: loaded.problems.map((p) => ({ where: `${CONFIG_FILE}:${p.line}:${p.column}`, message: p.message })) };
    await reply(deps.templates.render("help", { ...view, ...rulesView, shortSha: pull.headSha.slice(0, 7) }));
    return;
  }
  if (job.command === "unlock") return unlock(deps, job, reply);
  if (pull.state === "closed") {
    await reply(deps.templates.render("command-reply", { reason: "closed", command: job.command }));
    return;
  }
  if (isFork(pull.headRepo, pull.baseRepo) && !deps.allowForkPrs) {
    await postNotice(deps, forkNotice(job.installationId, job.owner, job.repo, job.number, pull.headRepo, deps.templates));
    return;
  }
  if (job.command === "plan") {
    await planPullRequest(deps, {
      trigger: job.trigger,
      pull: { installationId: job.installationId, owner: job.owner, repo: job.repo, number: job.number, headSha: pull.headSha, author: pull.author, baseRef: pull.baseRef },
      selection: { mode: "command", selector: job.selector },
    });
    return;
  }
  return applyCommand(deps, job, pull.headSha, reply, retry ? async () => 0 : audit);
}

/** /unlock: release every lock the PR holds and discard its plans, in one transaction; say what was released. */
async function unlock(deps: WorkerDeps, job: CommandPayload, reply: (body: string) => Promise<void>): Promise<void> {
  const repoName = `${job.owner}/${job.repo}`;
  const released = await inTransaction(deps.pool, async (tx) => {
    await consumePullPlans(tx, repoName, job.number, `unlock:${job.actor}`);
    return releasePullLocks(tx, repoName, job.number, job.actor, "unlock");
  });
  await reply(deps.templates.render("unlock-reply", { actor: job.actor, released }));
}

/** /apply: the reviewed plans of the current head, if approved, applied now. */
async function applyCommand(
  deps: WorkerDeps,
  job: CommandPayload,
  headSha: string,
  reply: (body: string) => Promise<void>,
  audit: (action: AuditAction, sha: string | null, details: Record<string, unknown>) => Promise<number>,
): Promise<void> {
  const repo = { owner: job.owner, name: job.repo };
  const gh = await deps.github.forInstallation(job.installationId);
  const ctx: ApplyContext = { trigger: job.trigger, installationId: job.installationId, repo, pullNumber: job.number, sha: headSha, actor: job.actor, onMerge: false };
  await audit("apply.requested", headSha, { selector: job.selector });
  const group = await latestPlanGroup(deps.pool, `${job.owner}/${job.repo}`, job.number, headSha);
  if (!group) return denyApply(deps, gh, ctx, `There is no plan of the current head ${headSha.slice(0, 7)}: comment \`/plan\` first.`);
  const base = await baseRulesNow(deps, gh, group);
  const status = await approvalStatus(deps, gh, group, base);
  if (status.pending) return denyApply(deps, gh, ctx, `The plan of ${headSha.slice(0, 7)} is still running: wait for it, then get it approved.`);
  if (status.failed) return denyApply(deps, gh, ctx, `The last plan of ${headSha.slice(0, 7)} failed: fix it and plan again before applying.`);
  if (!status.met) {
    const missing = status.missing.map((m) => `${m.project} has ${m.have} of ${m.needed} approvals`).join("; ");
    return denyApply(deps, gh, ctx, `The required approvals on ${headSha.slice(0, 7)} are not there yet (${missing}).`);
  }
  const { selector } = job;
  // -p NAME also selects the stacks of a cdktf program NAME (NAME/STACK).
  const matches = (run: Run) =>
    (selector.project === undefined || run.project === selector.project || run.project.startsWith(`${selector.project}/`)) &&
    (selector.dir === undefined || run.dir === selector.dir) &&
    (selector.workspace === undefined || run.workspace === selector.workspace);
  const all = await reviewedUnits(deps, group, false, base, matches);
  const units = all.filter((u) => !u.plan.consumed_at && hasChanges(u));
  if (!units.length) {
    const spent = all.map((u) => u.plan.consumed_by ?? "").find(Boolean) ?? "";
    const why = spent.startsWith("interrupted") ? "interrupted" : spent.startsWith("unlock") ? "discarded" : spent ? "applied" : "";
    await reply(deps.templates.render("command-reply", { reason: "nothing-to-apply", command: "apply", shortSha: headSha.slice(0, 7), why }));
    return;
  }
  await applyUnits(deps, gh, ctx, units);
}
