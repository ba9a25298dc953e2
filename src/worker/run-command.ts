import { appendAuditEvent, type AuditAction } from "../audit/audit-log.js";
import { inTransaction } from "../db/pool.js";
import { hasRunGroup } from "../db/run-groups.js";
import { forkNotice, isFork } from "../jobs/fork-notice.js";
import type { CommandPayload } from "../jobs/jobs.js";
import { applyCommand } from "./apply/apply-command.js";
import type { Attempt } from "./apply/run-apply.js";
import { unlock } from "./apply/unlock.js";
import type { WorkerDeps } from "./deps.js";
import { helpReply } from "./plan/help.js";
import { overrideCommand } from "./plan/override.js";
import { planPullRequest } from "./plan/plan-pull-request.js";
import { postNotice } from "./post-notice.js";

const WRITERS = new Set(["admin", "maintain", "write"]);

/** Runs an accepted comment command: acknowledge, authorise, audit, then act. */
export async function runCommand(deps: WorkerDeps, job: CommandPayload, attempt: Attempt = { number: 1, max: 1 }): Promise<void> {
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

  if (job.command === "help") return reply(await helpReply(deps, gh, repo, pull));
  if (job.command === "unlock") return unlock(deps, job, reply);
  if (pull.state === "closed") {
    await reply(deps.templates.render("command-reply", { reason: "closed", command: job.command }));
    return;
  }
  if (isFork(pull.headRepo, pull.baseRepo) && !deps.allowForkPrs) {
    await postNotice(deps, forkNotice(job.installationId, job.owner, job.repo, job.number, pull.headRepo, deps.templates));
    return;
  }
  if (job.command === "override") {
    if (!job.override) throw new Error("an /override job without its policy and reason");
    return overrideCommand(deps, gh, { ...job, override: job.override }, pull, reply);
  }
  if (job.command === "plan") {
    await planPullRequest(deps, {
      trigger: job.trigger,
      pull: { installationId: job.installationId, owner: job.owner, repo: job.repo, number: job.number, headSha: pull.headSha, author: pull.author, baseRef: pull.baseRef, defaultBranch: pull.defaultBranch },
      selection: { mode: "command", selector: job.selector },
    });
    return;
  }
  if (!retry) await audit("apply.requested", pull.headSha, { selector: job.selector });
  return applyCommand(deps, gh, job, pull.headSha, attempt);
}

