import { appendAuditEvent } from "../../audit/audit-log.js";
import { inTransaction } from "../../db/pool.js";
import type { PlanPullRequestPayload } from "../../jobs/jobs.js";
import { markerLine, PLAN_MARKER } from "../../github/markers.js";
import { checkSummary, checkTitle } from "../../render/templates.js";
import { InputRefused } from "../../settings/input-limits.js";
import type { WorkerDeps } from "../deps.js";
import { PLAN_CHECK, planPullRequest } from "./plan-pull-request.js";

/**
 * planPullRequest, which on its job's last attempt tells the PR when the plan
 * could not even start (git fetch failing, a full data directory, GitHub down):
 * a failed plangate/plan, the plan comment saying why, a plan.failed audit
 * event. Earlier attempts throw and the queue retries them; a commit over
 * one of plangate's input limits (InputRefused) is reported at once, since
 * another attempt would only do the same work again.
 */
export async function planPullRequestOrReport(deps: WorkerDeps, job: PlanPullRequestPayload, attempt: { number: number; max: number }): Promise<void> {
  try {
    await planPullRequest(deps, job);
  } catch (error) {
    const refused = error instanceof InputRefused;
    if (attempt.number < attempt.max && !refused) throw error;
    if (refused) deps.log.warn({ reason: error.message }, "plan refused: over an input limit");
    else deps.log.error({ err: error }, "plan could not start");
    await reportNotStarted(deps, job, (error as Error).message, refused);
  }
}

async function reportNotStarted(deps: WorkerDeps, job: PlanPullRequestPayload, message: string, refused: boolean): Promise<void> {
  const { pull } = job;
  const repo = { owner: pull.owner, name: pull.repo };
  await inTransaction(deps.pool, (tx) =>
    appendAuditEvent(tx, { action: "plan.failed", actor: "plangate", repo: `${pull.owner}/${pull.repo}`, pullNumber: pull.number, sha: pull.headSha, details: { stage: refused ? "limit" : "plangate", message } }),
  );
  const gh = await deps.github.forInstallation(pull.installationId);
  const body = deps.templates.render("plan-not-started", { marker: markerLine(PLAN_MARKER), shortSha: pull.headSha.slice(0, 7), message, refused });
  await gh.syncComments(repo, pull.number, PLAN_MARKER, [body]);
  await gh.createCheckRun(repo, PLAN_CHECK, pull.headSha, {
    status: "completed",
    conclusion: "failure",
    output: { title: checkTitle(deps.templates, "plan-not-started", { refused }), summary: checkSummary(deps.templates, "plan-not-started", { message, refused }) },
  });
}
