import { latestPlanGroup } from "../../db/run-groups.js";
import type { ReviewPayload } from "../../jobs/jobs.js";
import { updateApprovalCheck } from "./approval-check.js";
import type { WorkerDeps } from "../deps.js";

/** Re-evaluates plangate/approval for the plan of the PR's current head, if there is one. */
export async function onReview(deps: WorkerDeps, job: ReviewPayload): Promise<void> {
  const group = await latestPlanGroup(deps.pool, `${job.owner}/${job.repo}`, job.number, job.headSha);
  if (!group || !group.reported_at) return; // the plan's report evaluates approvals when it completes
  const gh = await deps.github.forInstallation(job.installationId);
  await updateApprovalCheck(deps, gh, group.id);
}
