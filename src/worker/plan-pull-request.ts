import { inTransaction } from "../db/pool.js";
import { createRunGroup, groupRuns, setCheckRunId } from "../db/runs.js";
import { fullName } from "../github/github.js";
import { enqueue, projectQueue, TASKS, type PlanProjectPayload, type PlanPullRequestPayload } from "../jobs/jobs.js";
import { affectedProjectsWithoutConfig } from "../projects/projects.js";
import type { WorkerDeps } from "./deps.js";

export const PLAN_CHECK = "plangate/plan";

/** Finds the projects a PR affects, opens the `plangate/plan` check run, and queues one job per project. */
export async function planPullRequest(deps: WorkerDeps, job: PlanPullRequestPayload): Promise<void> {
  const { pull } = job;
  const repo = { owner: pull.owner, name: pull.repo };
  const gh = await deps.github.forInstallation(pull.installationId);
  const projects = affectedProjectsWithoutConfig(await gh.listPullFiles(repo, pull.number));
  if (!projects.length) {
    await gh.createCheckRun(repo, PLAN_CHECK, pull.headSha, {
      status: "completed",
      conclusion: "neutral",
      output: { title: "Nothing to plan", summary: "This pull request changes no terraform project." },
    });
    return;
  }
  const { group } = await createRunGroup(
    deps.pool,
    { kind: "plan", trigger_id: job.trigger, installation_id: pull.installationId, repo: fullName(repo), pull_number: pull.number, sha: pull.headSha },
    projects.map((p) => ({ project: p.name, dir: p.dir, engine: p.engine, workspace: p.workspace })),
  );
  if (!group.check_run_id) {
    const checkRunId = await gh.createCheckRun(repo, PLAN_CHECK, pull.headSha, {
      status: "in_progress",
      output: { title: `Planning ${projects.length} project${projects.length === 1 ? "" : "s"}`, summary: projects.map((p) => `- \`${p.name}\``).join("\n") },
    });
    await setCheckRunId(deps.pool, group.id, checkRunId);
  }
  await inTransaction(deps.pool, async (tx) => {
    for (const run of await groupRuns(tx, group.id)) {
      const payload: PlanProjectPayload = { runId: run.id, installationId: pull.installationId };
      await enqueue(tx, { task: TASKS.planProject, payload, queueName: projectQueue(group.repo, run.project, run.workspace), jobKey: `plan-run:${run.id}`, maxAttempts: 3 });
    }
  });
}
