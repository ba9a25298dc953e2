import { appendAuditEvent } from "../../audit/audit-log.js";
import { loadHeadPlans } from "../../db/head-plans.js";
import { insertPolicyOverride, pullOverrides } from "../../db/policy-overrides.js";
import { inTransaction } from "../../db/pool.js";
import { latestPlanGroup, releaseGroupReport } from "../../db/run-groups.js";
import { overrideRunPolicy } from "../../db/runs.js";
import type { GitHub, PullRequestInfo } from "../../github/github.js";
import type { CommandPayload } from "../../jobs/jobs.js";
import { isBlocking, isOverridable, isOwner, withOverrides } from "../../plans/policy-judgement.js";
import { updateApprovalCheck } from "../approval/approval-check.js";
import type { WorkerDeps } from "../deps.js";
import { reportPlanGroupIfDone } from "./report-plan.js";

/**
 * `/override NAME REASON…`: a policy's owner (with write permission, never
 * the PR's author) lets the head's plans through the deny policy NAME. The
 * override holds only for the plans (fingerprints) it was given on: a push
 * that changes the plan needs a new one. Each project it lets through is
 * audited as policy.overridden with the reason; the plan comment and checks
 * are reported again. A refusal replies and changes nothing.
 */
export async function overrideCommand(deps: WorkerDeps, gh: GitHub, job: CommandPayload & { override: NonNullable<CommandPayload["override"]> }, pull: PullRequestInfo, reply: (body: string) => Promise<unknown>): Promise<void> {
  const { policy, reason } = job.override;
  const repoName = `${job.owner}/${job.repo}`;
  const refuse = async (refusal: string, extra: Record<string, unknown> = {}) => {
    await inTransaction(deps.pool, (tx) =>
      appendAuditEvent(tx, { action: "command.rejected", actor: job.actor, repo: repoName, pullNumber: job.number, sha: pull.headSha, details: { command: "override", reason: refusal, policy, ...extra } }),
    );
    await reply(deps.templates.render("override-reply", { refusal, policy, actor: job.actor, shortSha: pull.headSha.slice(0, 7), ...extra }));
  };
  // Nobody lets their own change through a policy.
  if (job.actor.toLowerCase() === pull.author.toLowerCase()) return refuse("author");
  const latest = await latestPlanGroup(deps.pool, repoName, job.number, pull.headSha);
  if (!latest) return refuse("no-plan");
  const { runs, plans } = await loadHeadPlans(deps.pool, latest);
  const denied = runs.filter((r) => r.policy?.outcomes.some((o) => isOverridable(o, policy)) && plans.has(r.id));
  if (!denied.length) {
    const matched = runs.some((r) => r.policy?.outcomes.some((o) => o.policy === policy));
    return refuse(matched ? "not-denied" : "not-matched");
  }
  // Each project's outcome names the owners of the policy it was judged by (the base branch's, or the organisation's).
  const owners = denied.flatMap((r) => r.policy!.outcomes.filter((o) => isOverridable(o, policy)).map((o) => o.owners));
  const [owner] = repoName.split("/") as [string];
  const member = (team: string, user: string) => {
    const [org, slug] = team.includes("/") ? (team.split("/", 2) as [string, string]) : [owner, team];
    return gh.isTeamMember(org, slug, user);
  };
  for (const o of owners) if (!(await isOwner(o, job.actor, member))) return refuse("not-owner", { owners: [...o.teams.map((t) => `team ${t}`), ...o.users.map((u) => `@${u}`)] });

  const passed: string[] = [];
  await inTransaction(deps.pool, async (tx) => {
    for (const run of denied) {
      const fingerprint = plans.get(run.id)!.fingerprint;
      const given = { policy, project: run.project, workspace: run.workspace, fingerprint, actor: job.actor, reason };
      await insertPolicyOverride(tx, { ...given, repo: repoName, pullNumber: job.number, runId: run.id });
      const policyNow = withOverrides(run.policy!, { project: run.project, workspace: run.workspace, fingerprint }, await pullOverrides(tx, repoName, job.number));
      const passes = !policyNow.outcomes.some(isBlocking) && !run.error?.violations?.length;
      await overrideRunPolicy(tx, run.id, policyNow, passes);
      if (passes) passed.push(run.project);
      await appendAuditEvent(tx, {
        action: "policy.overridden",
        actor: job.actor,
        repo: repoName,
        pullNumber: job.number,
        project: run.project,
        workspace: run.workspace,
        sha: run.sha,
        runId: run.id,
        details: { policy, reason, fingerprint, passes },
      });
    }
  });
  // The comment and plangate/plan show the plan as it now stands; plangate/approval follows.
  const groups = [...new Set(denied.map((r) => r.group_id))];
  for (const groupId of groups) {
    await releaseGroupReport(deps.pool, groupId);
    await reportPlanGroupIfDone(deps, groupId, gh);
  }
  if (!groups.includes(latest.id)) await updateApprovalCheck(deps, gh, latest.id);
}
