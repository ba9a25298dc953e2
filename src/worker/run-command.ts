import { appendAuditEvent, type AuditAction } from "../audit/audit-log.js";
import { inTransaction } from "../db/pool.js";
import { forkNotice, isFork } from "../handlers/pull-request.js";
import type { CommandPayload } from "../jobs/jobs.js";
import { CONFIG_FILE } from "../settings/load-repo-config.js";
import type { ProjectConfig } from "../settings/repo-config.js";
import type { WorkerDeps } from "./deps.js";
import { loadProjects } from "./load-projects.js";
import { planPullRequest } from "./plan-pull-request.js";
import { postNotice } from "./post-notice.js";

const WRITERS = new Set(["admin", "maintain", "write"]);

function approvalText(p: ProjectConfig): string {
  const who = [...p.approvals.teams.map((t) => `team ${t}`), ...p.approvals.users].join(", ");
  const destroy = p.approvals.destroy_required !== undefined ? `; ${p.approvals.destroy_required} on destroy` : "";
  return `${p.approvals.required}${who ? ` from ${who}` : ""}${destroy}`;
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

  await gh.addReaction(repo, job.commentId, "eyes");
  const pull = await gh.getPull(repo, job.number);
  if (job.command !== "help") {
    const permission = await gh.permissionOf(repo, job.actor);
    if (!WRITERS.has(permission)) {
      await audit("command.rejected", pull.headSha, { reason: "permission", permission, selector: job.selector });
      await reply(deps.templates.render("command-reply", { reason: "permission", actor: job.actor, command: job.command, permission }));
      return;
    }
  }
  await audit("command.received", pull.headSha, { selector: job.selector, commentId: job.commentId });

  if (job.command === "help") {
    const loaded = await loadProjects(deps.mirrors, repo, pull.headSha, () => gh.cloneToken());
    const view = loaded.ok
      ? { ...loaded.config, projects: loaded.config.projects.map((p) => ({ ...p, approvalText: approvalText(p) })) }
      : { problems: loaded.problems.map((p) => ({ where: `${CONFIG_FILE}:${p.line}:${p.column}`, message: p.message })) };
    await reply(deps.templates.render("help", { ...view, shortSha: pull.headSha.slice(0, 7) }));
    return;
  }
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
      pull: { installationId: job.installationId, owner: job.owner, repo: job.repo, number: job.number, headSha: pull.headSha, author: pull.author },
      selection: { mode: "command", selector: job.selector },
    });
    return;
  }
  await reply(deps.templates.render("command-reply", { reason: "not-yet", command: job.command }));
}
