import { loadGroupResults } from "../../db/plan-report.js";
import { claimGroupReport, movedOn, releaseGroupReport, setCheckRunId } from "../../db/run-groups.js";
import type { CheckOutput, GitHub } from "../../github/github.js";
import type { RunGroup } from "../../db/run-groups.js";
import { checkSummary, checkTitle } from "../../render/templates.js";
import { PLAN_MARKER } from "../../github/markers.js";
import { renderPlanComment } from "../../render/plan-comment.js";
import { GITHUB_CHECK_TEXT_LIMIT } from "../../github/limits.js";
import { DroppedWrite, writeFirst, writeWhile } from "../../github/write-order.js";
import { renderPlanCheck } from "../../render/plan-check.js";
import { updateApprovalCheck } from "../approval/approval-check.js";
import { baseRulesAtPlan } from "../base-rules.js";
import { planReportOf, sameReport, type PlanReport } from "../../render/plan-report.js";
import type { WorkerDeps } from "../deps.js";
import { unfinishedRunCount } from "../../db/runs.js";
import { enqueue, REPORT_PRIORITY, TASKS, type ReportPlanPayload } from "../../jobs/jobs.js";
import type { HandedToReport } from "./report-handoff.js";

export const PLAN_CHECK = "plangate/plan";

/** The labels plangate keeps on a PR. */
export const PLAN_LABELS = ["plangate:no-changes", "plangate:changes", "plangate:destroy"] as const;

/** The label for the latest plan: destroy beats changes beats no changes; none when nothing planned. */
export function planLabel(report: PlanReport): string | undefined {
  const planned = report.projects.filter((p) => p.changes);
  if (!planned.length) return undefined;
  if (planned.some((p) => p.changes!.counts.destroy + p.changes!.counts.replace > 0)) return "plangate:destroy";
  if (planned.some((p) => p.changes!.resources.length > 0 || (p.changes!.outputs?.length ?? 0) > 0)) return "plangate:changes";
  return "plangate:no-changes";
}

/**
 * Queues the group's report once none of its runs is left to finish: a job
 * of its own (`report-plan`, one per group), not in the project's queue, so
 * the project's next plan (a later push's) starts as soon as this run's
 * result is stored, while GitHub's pacing lets the report's writes out. Each
 * run checks after its result is committed, so the last to finish sees none
 * left; a project job that fails before this is retried, and its retry (the
 * run already finished) queues the report then. `handed` goes to the report
 * job if this process runs it (see ReportHandoff).
 */
export async function reportWhenDone(deps: WorkerDeps, groupId: number, installationId: number, handed?: HandedToReport): Promise<void> {
  if ((await unfinishedRunCount(deps.pool, groupId)) > 0) return;
  if (handed && (handed.known || handed.comments || handed.ahead)) deps.reportHandoff?.put(groupId, handed);
  const payload: ReportPlanPayload = { groupId, installationId };
  await enqueue(deps.pool, { task: TASKS.reportPlan, payload, jobKey: `report-plan:${groupId}`, maxAttempts: 12, priority: REPORT_PRIORITY });
}

/** The `report-plan` job: the group's report, with what its last run's job handed it in this process. */
export async function reportPlan(deps: WorkerDeps, job: ReportPlanPayload): Promise<void> {
  const handed = deps.reportHandoff?.take(job.groupId) ?? {};
  const gh = await deps.github.forInstallation(job.installationId);
  await reportPlanGroupIfDone(deps, job.groupId, gh, handed);
}

/**
 * Reports a plan group once every run in it has finished: the comment first
 * (the write a PR author waits for), then `plangate/plan` completed (the
 * in-progress one if a slow plan opened it, else a new one), the label when it
 * changes, and `plangate/approval`. A plan overtaken by a later plan of the
 * same PR only completes its own check run: the PR shows the later one.
 * Exactly one worker reports; if GitHub refuses, the claim is given back so
 * the job's retry reports instead.
 */
export async function reportPlanGroupIfDone(deps: WorkerDeps, groupId: number, gh: GitHub, handed: HandedToReport = {}): Promise<void> {
  const { known, comments: lookedUp, ahead } = handed;
  // One read of the group: claimed, with whether a later plan of the PR overtook it.
  const claimed = await claimGroupReport(deps.pool, groupId);
  if (!claimed) return;
  const { group, superseded } = claimed;
  try {
    const [owner, name] = group.repo.split("/") as [string, string];
    const repo = { owner, name };
    // The PR's plan comments are looked up while the results are read and rendered.
    const pullNumber = group.pull_number;
    const comments = pullNumber !== null && !superseded ? (lookedUp ?? Promise.resolve(undefined)).then((found) => found ?? gh.findComments(repo, pullNumber, PLAN_MARKER)) : undefined;
    comments?.catch(() => undefined); // a failed lookup is thrown where it is awaited, below
    // The link rendered ahead, if any (a link names when it expires: made again, it could differ by a second).
    const runUrl = ahead?.report.runUrl ?? deps.runLinks?.url(groupId);
    const loaded = await loadGroupResults(deps.pool, groupId, known, { group });
    const report = planReportOf(loaded, runUrl);
    let rest: (() => Promise<void>) | undefined;
    if (comments) {
      const renderedAhead = ahead && sameReport(report, ahead.report) ? await ahead.bodies.catch(() => undefined) : undefined;
      const bodies = renderedAhead ?? renderPlanComment(deps.templates, report, { maxParts: deps.maxComments });
      // The write the PR author waits for goes ahead of writes already waiting (an earlier head's checks): the
      // comment's first part (its summary of every project); a long comment's other parts follow the check.
      const marked = await comments;
      await writeFirst(() => marked.sync(bodies, { firstOnly: true }));
      rest = () => marked.sync(bodies);
    }
    const skipped = loaded.runs.some((r) => r.status === "skipped");
    // A superseded plan that skipped projects says so (neutral), rather than failing on commits nobody will merge.
    const { conclusion, output } =
      superseded && skipped
        ? { conclusion: "neutral" as const, output: { title: checkTitle(deps.templates, "plan-superseded"), summary: checkSummary(deps.templates, "plan-superseded", { shortSha: group.sha.slice(0, 7) }) } }
        : renderPlanCheck(deps.templates, report);
    // A changed project this plan left out keeps the check pending (a failure stays a failure).
    const completed =
      group.unplanned.length && conclusion !== "failure"
        ? ({ status: "in_progress", output: withUnplanned(deps, group, output), detailsUrl: runUrl } as const)
        : ({ status: "completed", conclusion, output, detailsUrl: runUrl } as const);
    // An opened check is always completed; the writes after it are dropped once a later push moved the PR on.
    if (group.check_run_id !== null) await gh.updateCheckRun(repo, group.check_run_id, completed);
    if (superseded) return;
    await writeWhile(stillCurrent(deps, group), async () => {
      if (group.check_run_id === null) await setCheckRunId(deps.pool, groupId, await gh.createCheckRun(repo, PLAN_CHECK, group.sha, completed));
      await rest?.();
      if (group.pull_number !== null) await gh.syncLabels(repo, group.pull_number, planLabel(report), PLAN_LABELS);
      // The approval check re-reads the group: a review may have moved it on since the claim.
      await updateApprovalCheck(deps, gh, groupId, await baseRulesAtPlan(deps, gh, group));
    });
  } catch (error) {
    // The PR moved on mid-report: the later head's plan reports; this one is done.
    if (error instanceof DroppedWrite) return;
    await releaseGroupReport(deps.pool, groupId);
    throw error;
  }
}

/**
 * Whether the PR is still at the group's head when a write's turn comes. An
 * unreadable database says yes: the write goes, as it would have without the
 * question (a report's GitHub writes never wait on the database).
 */
export function stillCurrent(deps: WorkerDeps, group: Pick<RunGroup, "id" | "repo" | "pull_number" | "sha">): () => Promise<boolean> {
  return async () => !(await movedOn(deps.pool, group).catch(() => false));
}

/** The plan check's output while changed projects wait for a /plan: what to run first, then the plan's own table. */
function withUnplanned(deps: WorkerDeps, group: RunGroup, output: CheckOutput): CheckOutput {
  const view = { unplanned: group.unplanned, first: group.unplanned[0], others: group.unplanned.length - 1, shortSha: group.sha.slice(0, 7) };
  const waiting = checkSummary(deps.templates, "plan-unplanned", view);
  const summary = `${waiting}\n\n${output.summary}`;
  return { ...output, title: checkTitle(deps.templates, "plan-unplanned", view), summary: summary.length <= GITHUB_CHECK_TEXT_LIMIT ? summary : waiting };
}
