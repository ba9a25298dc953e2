import { run, type Runner, type Task } from "graphile-worker";
import type { CommandPayload, NoticePayload, PlanProjectPayload, PlanPullRequestPayload, PullClosedPayload, ReviewPayload } from "../jobs/jobs.js";
import { TASKS } from "../jobs/jobs.js";
import { quietLogger } from "../db/queue-logger.js";
import type { WorkerDeps } from "./deps.js";
import { Heartbeat } from "./heartbeat.js";
import { planProject } from "./plan/plan-project.js";
import { planPullRequest } from "./plan/plan-pull-request.js";
import { onPullClosed } from "./apply/on-merge.js";
import { onReview } from "./approval/on-review.js";
import { postNotice } from "./post-notice.js";
import { runCommand } from "./run-command.js";

/** Starts `concurrency` job slots on the queue in this process, with crash recovery. */
export async function startWorker(deps: WorkerDeps, concurrency: number, staleAfterMs: number): Promise<{ stop(): Promise<void> }> {
  const heartbeat = new Heartbeat(deps.pool, staleAfterMs, deps.log);
  const taskList: Record<string, Task> = {
    [TASKS.planPullRequest]: async (payload) => planPullRequest(deps, payload as PlanPullRequestPayload),
    [TASKS.planProject]: async (payload, helpers) =>
      planProject(deps, payload as PlanProjectPayload, { number: helpers.job.attempts, max: helpers.job.max_attempts }),
    [TASKS.command]: async (payload) => runCommand(deps, payload as CommandPayload),
    [TASKS.notice]: async (payload) => postNotice(deps, payload as NoticePayload),
    [TASKS.pullClosed]: async (payload) => onPullClosed(deps, payload as PullClosedPayload),
    [TASKS.review]: async (payload) => onReview(deps, payload as ReviewPayload),
  };
  const runner: Runner = await run({ pgPool: deps.pool, concurrency, taskList, noHandleSignals: true, pollInterval: 1000, logger: quietLogger, events: heartbeat.events });
  heartbeat.start();
  return {
    async stop() {
      await runner.stop();
      await heartbeat.stop();
    },
  };
}
