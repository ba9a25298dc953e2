import { run, type Runner, type Task } from "graphile-worker";
import { quietLogger } from "../db/queue-logger.js";
import { runningJob } from "../sandbox/lanes.js";
import type { DriftCheckPayload, DriftScanPayload } from "../jobs/jobs.js";
import type { CommandPayload, MergeGroupPayload, NoticePayload, OpenPlanCheckPayload, PlanProjectPayload, PlanPullRequestPayload, PullClosedPayload, ReportApplyPayload, ReportPlanPayload, ReviewPayload } from "../jobs/jobs.js";
import { EXPRESS_TASKS, TASKS } from "../jobs/jobs.js";
import { onPullClosed } from "./apply/on-merge.js";
import { reportApply } from "./apply/report-apply.js";
import { verifyMergeGroup } from "./apply/merge-queue.js";
import { onReview } from "./approval/on-review.js";
import type { WorkerDeps } from "./deps.js";
import { driftCheck } from "./drift/drift-check.js";
import { driftScan } from "./drift/drift-scan.js";
import { Heartbeat } from "./heartbeat.js";
import { sendNotification } from "./notify.js";
import { planProject } from "./plan/plan-project.js";
import { openPlanCheck } from "./plan/open-plan-check.js";
import { reportPlan } from "./plan/report-plan.js";
import { planPullRequestOrReport } from "./plan/plan-not-started.js";
import { postNotice } from "./post-notice.js";
import { runCommand } from "./run-command.js";

/** What a job's log lines carry, read from its payload: delivery id, repo, PR, run or group. */
function jobFields(payload: Record<string, any>) {
  const pull = payload.pull ?? payload;
  return {
    deliveryId: payload.trigger,
    repo: pull.owner && pull.repo ? `${pull.owner}/${pull.repo}` : undefined,
    pr: pull.number,
    runId: payload.runId,
    groupId: payload.groupId,
  };
}

/** How many EXPRESS_TASKS jobs a process runs at once, in a worker pool of their own beside the plan slots. */
export const EXPRESS_SLOTS = 4;

/**
 * How often an idle plan slot asks the queue for a job besides the queue's
 * notifications. graphile-worker 0.17 takes a job by locking every free
 * named queue's row (`for update skip locked`, its getJobs strategy 2), so
 * two slots looking at once (a notification nudges several) can each skip
 * the queue the other holds and find nothing: the job then waits for the
 * next poll. A plan job is in a named queue (its project's): at the
 * library's usual second, about one quiet plan in five in bench:fairness
 * commented a second late, two when the plan check opened meanwhile. Four
 * looks a second per idle slot are cheap for Postgres.
 */
const PLAN_POLL_MS = 250;

/**
 * Starts the queue's worker pools in this process, with crash recovery: one
 * of `concurrency` job slots (one more beside sandbox lanes) for every task
 * but the express ones, and one of EXPRESS_SLOTS for those.
 */
export async function startWorker(deps: WorkerDeps, concurrency: number, staleAfterMs: number): Promise<{ stop(): Promise<void> }> {
  const heartbeat = new Heartbeat(deps.pool, staleAfterMs, deps.log);
  // Each job gets deps whose logger carries the job's context, and the queue's events (a batch wakes on a job queued).
  const task = <P>(fn: (deps: WorkerDeps, payload: P, attempt: { number: number; max: number }) => Promise<void>): Task => async (payload, helpers) => {
    const log = deps.log.child({ jobId: helpers.job.id, task: helpers.job.task_identifier, ...jobFields(payload as Record<string, any>) });
    // The job's turn goes with its code: a sandbox entry deep inside it waits for a lane in its place.
    const group = (payload as { exportKey?: unknown }).exportKey;
    const turn = { priority: helpers.job.priority, group: typeof group === "string" ? group : undefined };
    const run = async () => {
      // While it runs, the programs of less urgent jobs give way to it (SandboxLanes.running).
      const done = deps.sandbox.lanes?.running(turn);
      try {
        await runningJob.run(turn, () => fn({ ...deps, log, queueEvents: heartbeat.events }, payload as P, { number: helpers.job.attempts, max: helpers.job.max_attempts }));
      } finally {
        done?.();
      }
    };
    await (deps.metrics ? deps.metrics.timeJob(helpers.job.task_identifier, run) : run());
  };
  const taskList: Record<string, Task> = {
    [TASKS.planPullRequest]: task<PlanPullRequestPayload>(planPullRequestOrReport),
    [TASKS.planProject]: task<PlanProjectPayload>(planProject),
    [TASKS.command]: task<CommandPayload>(runCommand),
    [TASKS.notice]: task<NoticePayload>(postNotice),
    [TASKS.pullClosed]: task<PullClosedPayload>(onPullClosed),
    [TASKS.review]: task<ReviewPayload>(onReview),
    [TASKS.reportApply]: task<ReportApplyPayload>(reportApply),
    [TASKS.notify]: task<Parameters<typeof sendNotification>[1]>(sendNotification),
    [TASKS.driftScan]: task<DriftScanPayload>(driftScan),
    [TASKS.driftCheck]: task<DriftCheckPayload>(driftCheck),
    [TASKS.mergeGroup]: task<MergeGroupPayload>(verifyMergeGroup),
    [TASKS.openPlanCheck]: task<OpenPlanCheckPayload>(openPlanCheck),
    [TASKS.reportPlan]: task<ReportPlanPayload>(reportPlan),
  };
  const only = (keep: (name: string) => boolean) => Object.fromEntries(Object.entries(taskList).filter(([name]) => keep(name)));
  const slowTasks = only((name) => !EXPRESS_TASKS.includes(name));
  const expressTasks = only((name) => EXPRESS_TASKS.includes(name));
  // Every minute one process (the queue's cron) looks for projects whose drift check is due.
  const crontab = `* * * * * ${TASKS.driftScan} ?max=1&jobKey=drift-scan&jobKeyMode=replace`;
  // With sandbox lanes (as many as `concurrency`), one job more than lanes: its work outside the sandbox fills their gaps.
  const slots = deps.sandbox.lanes ? concurrency + 1 : concurrency;
  const common = { pgPool: deps.pool, noHandleSignals: true, logger: quietLogger, events: heartbeat.events };
  const runners: Runner[] = [
    await run({ ...common, pollInterval: PLAN_POLL_MS, concurrency: slots, taskList: slowTasks, crontab }),
    await run({ ...common, pollInterval: 1000, concurrency: EXPRESS_SLOTS, taskList: expressTasks }),
  ];
  heartbeat.start();
  return {
    async stop() {
      await Promise.all(runners.map((r) => r.stop()));
      await heartbeat.stop();
    },
  };
}
