import { run, type Runner, type Task } from "graphile-worker";
import type { CommandPayload, NoticePayload, PlanProjectPayload, PlanPullRequestPayload } from "../jobs/jobs.js";
import { TASKS } from "../jobs/jobs.js";
import { quietLogger } from "../jobs/queue-logger.js";
import type { WorkerDeps } from "./deps.js";
import { planProject } from "./plan-project.js";
import { planPullRequest } from "./plan-pull-request.js";
import { postNotice } from "./post-notice.js";
import { runCommand } from "./run-command.js";

/** Starts `concurrency` job slots on the queue in this process. */
export async function startWorker(deps: WorkerDeps, concurrency: number): Promise<Runner> {
  const taskList: Record<string, Task> = {
    [TASKS.planPullRequest]: async (payload) => planPullRequest(deps, payload as PlanPullRequestPayload),
    [TASKS.planProject]: async (payload, helpers) =>
      planProject(deps, payload as PlanProjectPayload, { number: helpers.job.attempts, max: helpers.job.max_attempts }),
    [TASKS.command]: async (payload) => runCommand(deps, payload as CommandPayload),
    [TASKS.notice]: async (payload) => postNotice(deps, payload as NoticePayload),
  };
  return run({ pgPool: deps.pool, concurrency, taskList, noHandleSignals: true, pollInterval: 1000, logger: quietLogger });
}
