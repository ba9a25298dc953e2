import { CronExpressionParser } from "cron-parser";
import { driftRepos, installationOf, lastDriftCheck } from "../../db/drift.js";
import { inTransaction } from "../../db/pool.js";
import { DRIFT_PRIORITY, enqueue, projectQueue, TASKS, type DriftCheckPayload, type DriftScanPayload } from "../../jobs/jobs.js";
import type { RepoConfig } from "../../settings/repo-config.js";
import type { WorkerDeps } from "../deps.js";
import { loadProjects } from "../plan/load-projects.js";

/** Whether a check on `schedule` (cron, UTC) is due: a scheduled time passed since the last check (or none was made). */
export function isDriftDue(schedule: string, lastChecked: Date | undefined, now: Date): boolean {
  if (!lastChecked) return true;
  // A scheduled time equal to now counts as passed (the scan itself runs on the minute).
  const previous = CronExpressionParser.parse(schedule, { currentDate: new Date(now.getTime() + 1000), tz: "UTC" }).prev().toDate();
  return lastChecked < previous;
}

/** A project's drift schedule: its own, else the file's `defaults:`. */
export const driftSchedule = (config: RepoConfig, project: RepoConfig["projects"][number]) => project.drift?.schedule ?? config.defaults?.drift?.schedule;

/**
 * Finds the projects whose drift check is due, on the default branch's head
 * and under its .plangate.yml, and queues one check each (in the project's
 * queue, so it never overlaps a plan or apply of it). `force` checks now.
 */
export async function driftScan(deps: WorkerDeps, job: DriftScanPayload): Promise<void> {
  const targets = job.repo ? [{ repo: job.repo, installation_id: job.installationId ?? (await installationOf(deps.pool, job.repo)) }] : await driftRepos(deps.pool);
  const now = new Date();
  for (const target of targets) {
    if (target.installation_id === undefined) {
      deps.log.warn({ repo: target.repo }, "no installation is known for this repository: drift is not checked");
      continue;
    }
    const [owner, name] = target.repo.split("/") as [string, string];
    const repo = { owner, name };
    const gh = await deps.github.forInstallation(target.installation_id);
    const token = () => gh.cloneToken();
    const branch = await gh.defaultBranch(repo);
    const { sha } = await deps.mirrors.branchHead(repo, branch, token);
    const loaded = await loadProjects(deps.mirrors, repo, sha, token);
    if (!loaded.ok) {
      deps.log.warn({ repo: target.repo, branch }, "the default branch's .plangate.yml is invalid: drift is not checked");
      continue;
    }
    const due: RepoConfig["projects"] = [];
    for (const project of loaded.config.projects) {
      const schedule = driftSchedule(loaded.config, project);
      if (!schedule) continue;
      const last = await lastDriftCheck(deps.pool, target.repo, project.name, project.workspace);
      if (job.force || isDriftDue(schedule, last?.checked_at, now)) due.push(project);
    }
    await inTransaction(deps.pool, async (tx) => {
      for (const project of due) {
        const payload: DriftCheckPayload = { installationId: target.installation_id!, repo: target.repo, branch, sha, project: project.name };
        await enqueue(tx, { task: TASKS.driftCheck, payload, queueName: projectQueue(target.repo, project.name, project.workspace, deps.repoConcurrency), priority: DRIFT_PRIORITY, jobKey: `drift:${target.repo}:${project.name}:${project.workspace}`, maxAttempts: 3 });
      }
    });
  }
}
