import type { NoticePayload } from "../jobs/jobs.js";
import type { WorkerDeps } from "./deps.js";

/** Posts a prepared comment; one with a marker is posted once and edited in place after. */
export async function postNotice(deps: WorkerDeps, job: NoticePayload): Promise<void> {
  const gh = await deps.github.forInstallation(job.installationId);
  const repo = { owner: job.owner, name: job.repo };
  if (job.marker) await gh.syncComments(repo, job.number, job.marker, [job.body]);
  else await gh.createComment(repo, job.number, job.body);
}
