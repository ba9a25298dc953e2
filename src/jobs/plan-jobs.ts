import { batchJobKey, planPriority, projectQueue, TASKS, type JobRequest, type PlanProjectPayload } from "./jobs.js";

/** A queued run of a plan group, as its job names it. */
export interface QueuedRun {
  id: number;
  project: string;
  workspace: string;
}

/** The most runs one plan-project job plans by default (PLANGATE_PLAN_BATCH): together in one sandbox entry, each kept apart there. */
export const MAX_BATCH = 8;
/** A group plans one run per job until it has this many runs per batch slot: small PRs keep a job per project. */
const RUNS_PER_BATCH_STEP = 16;

/**
 * How many runs of a group one job plans. Every job costs a queue round trip
 * and a transaction or two, and every sandbox entry a process chain, a
 * cgroup, a generated /etc and an egress lease (~80 ms a project on 2
 * cores): a batch plans its runs in one entry (planTogether). Small groups
 * keep one run per job, so their projects spread over every worker slot at
 * once (a group always has at least 16 jobs); a batch never holds a slot for
 * more than `max` plans (PLANGATE_PLAN_BATCH; 1: no batches).
 */
export function batchSize(runs: number, max = MAX_BATCH): number {
  return Math.max(1, Math.min(max, Math.floor(runs / RUNS_PER_BATCH_STEP)));
}

/**
 * The plan-project jobs of a group's queued runs, in order. One run per job:
 * the project's own queue (or its repository slot's, PLANGATE_REPO_CONCURRENCY),
 * keyed by the run. Batches: runs of one slot together (the repository's cap
 * holds), keyed by their first run; without slots a batch has no queue (the
 * project locks keep plans of one project apart). The n-th job of a group has
 * priority n, so a PR of one project takes turns with a PR of hundreds.
 */
export function planProjectJobs(repo: string, runs: QueuedRun[], base: { installationId: number; exportKey: string }, options: { repoConcurrency?: number; maxBatch?: number } = {}): JobRequest[] {
  const { repoConcurrency, maxBatch } = options;
  const size = batchSize(runs.length, maxBatch);
  if (size === 1) {
    return runs.map((run, n) => {
      const payload: PlanProjectPayload = { runId: run.id, ...base };
      return { task: TASKS.planProject, payload, queueName: projectQueue(repo, run.project, run.workspace, repoConcurrency), jobKey: `plan-run:${run.id}`, maxAttempts: 3, priority: planPriority(n) };
    });
  }
  const bySlot = new Map<string | undefined, QueuedRun[]>();
  for (const run of runs) {
    const slot = repoConcurrency ? projectQueue(repo, run.project, run.workspace, repoConcurrency) : undefined;
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), run]);
  }
  // Slots take turns: every slot's first batch before any slot's second.
  const batches: { queueName?: string; runs: QueuedRun[]; turn: number }[] = [];
  for (const [queueName, slotRuns] of bySlot) {
    for (let i = 0; i < slotRuns.length; i += size) batches.push({ queueName, runs: slotRuns.slice(i, i + size), turn: i / size });
  }
  batches.sort((x, y) => x.turn - y.turn);
  return batches.map((b, n) => {
    const priority = planPriority(n);
    const payload: PlanProjectPayload = { runId: b.runs[0]!.id, runIds: b.runs.map((r) => r.id), priority, ...base };
    return { task: TASKS.planProject, payload, queueName: b.queueName, jobKey: batchJobKey(base.exportKey, b.runs[0]!.id), maxAttempts: 3, priority };
  });
}
