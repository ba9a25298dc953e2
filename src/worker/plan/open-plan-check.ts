import { groupRunKeys } from "../../db/runs.js";
import { getGroup, movedOn, openCheckRunUnlessReported } from "../../db/run-groups.js";
import type { OpenPlanCheckPayload } from "../../jobs/jobs.js";
import { DroppedWrite, writeWhile } from "../../github/write-order.js";
import { checkSummary, checkTitle } from "../../render/templates.js";
import type { WorkerDeps } from "../deps.js";
import { PLAN_CHECK } from "./plan-pull-request.js";
import { stillCurrent } from "./report-plan.js";

/**
 * Opens `plangate/plan` in progress for a plan still running a moment after
 * it started. Until then the check is simply missing, which branch
 * protection treats as pending, so nothing can merge in between.
 */
export async function openPlanCheck(deps: WorkerDeps, job: OpenPlanCheckPayload): Promise<void> {
  const group = await getGroup(deps.pool, job.groupId);
  if (group.reported_at || group.check_run_id) return;
  // The PR moved on since: the newer head's plan opens its own check; this write is dropped.
  if (await movedOn(deps.pool, group)) return;
  const projects = [...new Set((await groupRunKeys(deps.pool, group.id)).map((r) => r.project))];
  const [owner, name] = group.repo.split("/") as [string, string];
  const gh = await deps.github.forInstallation(job.installationId);
  const open = () =>
    openCheckRunUnlessReported(deps.pool, group.id, () =>
      gh.createCheckRun({ owner, name }, PLAN_CHECK, group.sha, {
        status: "in_progress",
        output: { title: checkTitle(deps.templates, "plan-progress", { count: projects.length }), summary: checkSummary(deps.templates, "progress", { projects }) },
        detailsUrl: deps.runLinks?.url(group.id),
      }),
    );
  // Asked again when GitHub's pacing lets the write go: a push meanwhile drops it.
  await writeWhile(stillCurrent(deps, group), open).catch((error: unknown) => {
    if (!(error instanceof DroppedWrite)) throw error;
  });
}
