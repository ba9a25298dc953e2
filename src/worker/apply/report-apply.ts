import { applyMarker, markerLine } from "../../github/markers.js";
import { getGroup, setCheckRunId, type GroupOutcome, type RunGroup } from "../../db/run-groups.js";
import { groupRuns, type Run } from "../../db/runs.js";
import type { CheckConclusion, GitHub } from "../../github/github.js";
import type { ReportApplyPayload } from "../../jobs/jobs.js";
import { GITHUB_CHECK_TEXT_LIMIT, GITHUB_COMMENT_LIMIT } from "../../github/limits.js";
import { clipText } from "../../text/clip-text.js";
import { checkSummary, checkTitle, fenceFor, type Templates } from "../../render/templates.js";
import type { WorkerDeps } from "../deps.js";
import { APPLY_CHECK } from "./run-apply.js";

/** Kept of each project's apply output in the comment; the run page has all of it. */
const OUTPUT_LIMIT = 20_000;


function conclusionOf(outcome: GroupOutcome): CheckConclusion {
  if (outcome.result === "applied" || outcome.result === "verified") return "success";
  if (outcome.result === "refused" && outcome.neutral) return "neutral";
  return "failure";
}

function resultView(t: Templates, runs: Run[]) {
  return runs.map((r) => {
    const output = (r.output ?? "").trim().slice(-OUTPUT_LIMIT);
    return { project: r.project, workspace: r.workspace, failed: r.status === "failed", resultText: t.render("apply-status", { status: r.status }).trim(), output, fence: fenceFor(output) };
  });
}

/** The comment and check run of an apply group, from its recorded outcome and runs only. */
function render(deps: WorkerDeps, group: RunGroup, outcome: GroupOutcome, runs: Run[], runUrl?: string) {
  const common = { marker: markerLine(applyMarker(group.id)), shortSha: group.sha.slice(0, 7), onMerge: outcome.mode === "merge", command: outcome.mode === "command", runUrl };
  // Applies run in dependency order; the table follows it.
  const ordered = [...runs].sort((a, b) => (a.started_at?.getTime() ?? Infinity) - (b.started_at?.getTime() ?? Infinity) || a.id - b.id);
  if (outcome.result === "applied" || outcome.result === "failed") {
    const units = resultView(deps.templates, ordered);
    const failed = outcome.result === "failed";
    return {
      body: deps.templates.render("apply-result", { ...common, failed, units }),
      title: checkTitle(deps.templates, "apply-done", { failed, count: units.filter((u) => !u.failed).length }),
      summary: checkSummary(deps.templates, "apply-done", { units }),
    };
  }
  if (outcome.result === "interrupted") {
    const body = deps.templates.render("apply-interrupted", { ...common, projects: runs.filter((r) => r.status === "interrupted").map((r) => r.project) });
    return { body, title: checkTitle(deps.templates, "apply-interrupted"), summary: body };
  }
  const body = deps.templates.render("apply-denied", { ...common, ...outcome, fence: fenceFor(outcome.result === "refused" ? outcome.output ?? "" : "") });
  return { body, title: checkTitle(deps.templates, outcome.result === "refused" && outcome.neutral ? "apply-nothing" : "apply-denied"), summary: body };
}

/**
 * Tells GitHub what an apply group's recorded outcome is: one comment (edited
 * in place if a retry finds it) and plangate/apply completed. Runs after the
 * outcome is committed and is retried on its own, so a GitHub error never
 * leaves the check in progress and never runs an apply again.
 */
export async function reportApply(deps: WorkerDeps, job: ReportApplyPayload): Promise<void> {
  const group = await getGroup(deps.pool, job.groupId);
  const outcome = group.outcome;
  if (!outcome || outcome.mode === "queue" || group.pull_number === null) return;
  const gh: GitHub = await deps.github.forInstallation(job.installationId);
  const [owner, name] = group.repo.split("/") as [string, string];
  const repo = { owner, name };
  const runUrl = deps.runLinks?.url(group.id);
  const { body, title, summary } = render(deps, group, outcome, await groupRuns(deps.pool, group.id), runUrl);
  const silent = outcome.result === "refused" && outcome.code === "never-planned";
  if (!silent) await gh.syncComments(repo, group.pull_number, applyMarker(group.id), [clipText(body, GITHUB_COMMENT_LIMIT)]);
  // A /apply with nothing to apply is answered by the comment alone: it changes no check.
  if (outcome.mode === "command" && conclusionOf(outcome) === "neutral") return;
  const update = { status: "completed" as const, conclusion: conclusionOf(outcome), detailsUrl: runUrl, output: { title, summary: clipText(summary, GITHUB_CHECK_TEXT_LIMIT) } };
  if (group.check_run_id) await gh.updateCheckRun(repo, group.check_run_id, update);
  else await setCheckRunId(deps.pool, group.id, await gh.createCheckRun(repo, APPLY_CHECK, group.sha, update));
}
