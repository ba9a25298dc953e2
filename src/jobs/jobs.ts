import { createHash } from "node:crypto";
import type { CommandName, Override, Selector } from "../commands/parse-command.js";
import { addJob, addJobs } from "../db/job-queue.js";
import type { Queryable } from "../db/pool.js";
import type { Selection } from "../projects/affected.js";

/** The pull request a job is about, as the webhook described it. */
export interface PullRequestRef {
  installationId: number;
  owner: string;
  repo: string;
  number: number;
  headSha: string;
  author: string;
  /** The base branch; looked up when the event did not say. */
  baseRef?: string;
  /** The repository's default branch, whose .plangate.yml gives the rules; looked up when the event did not say. */
  defaultBranch?: string;
}

export interface PlanPullRequestPayload {
  /** The delivery (or command) that asked for the plan: one plan per trigger. */
  trigger: string;
  pull: PullRequestRef;
  selection: Selection;
  /** The `pull_request` action that asked (opened, synchronize, …); none for a re-run or a command. */
  action?: string;
  /** When the event arrived (ms since the epoch): a plan begun moments after a push fetches its head at once. */
  receivedAt?: number;
}

/** A comment command, accepted by the parser; permissions are checked by the worker. */
export interface CommandPayload {
  trigger: string;
  installationId: number;
  owner: string;
  repo: string;
  number: number;
  commentId: number;
  actor: string;
  command: CommandName;
  selector: Selector;
  /** `/override`: the policy and the reason. */
  override?: Override;
}

/** A pull request was closed (merged or not). */
export interface PullClosedPayload {
  trigger: string;
  installationId: number;
  owner: string;
  repo: string;
  number: number;
  headSha: string;
  merged: boolean;
  mergeSha: string | null;
  actor: string;
  /** The branch the PR merged into and the repository's default branch; looked up when the event did not say. */
  baseRef?: string;
  defaultBranch?: string;
}

/** A review changed: re-evaluate plangate/approval on the head. */
export interface ReviewPayload {
  installationId: number;
  owner: string;
  repo: string;
  number: number;
  headSha: string;
}

/** A comment to post as is; with a marker, posted once and then edited in place. */
export interface NoticePayload {
  installationId: number;
  owner: string;
  repo: string;
  number: number;
  body: string;
  marker?: string;
}

/** Report an apply group's recorded outcome to GitHub (comment and plangate/apply); retried on its own. */
export interface ReportApplyPayload {
  installationId: number;
  groupId: number;
}

/** A merge queue asks for checks on its commit (merge_group.checks_requested). */
export interface MergeGroupPayload {
  trigger: string;
  installationId: number;
  owner: string;
  repo: string;
  /** The queue commit: merge_group.head_sha. */
  headSha: string;
  /** refs/heads/gh-readonly-queue/<base>/pr-<n>-<sha>: names the pull request. */
  headRef: string;
  baseRef: string;
}

/** Look for projects whose drift check is due (every minute), or check one repository's now (`force`). */
export interface DriftScanPayload {
  repo?: string;
  installationId?: number;
  force?: boolean;
}

/** Plan one project at the default branch head and open, update or close its drift issue. */
export interface DriftCheckPayload {
  installationId: number;
  repo: string;
  branch: string;
  sha: string;
  project: string;
}

export interface PlanProjectPayload {
  /** The run to plan; a batch's first. */
  runId: number;
  /** A batch: these runs of one group, planned together (plan-jobs.ts); absent: runId alone. */
  runIds?: number[];
  /** A batch's priority, kept by what it hands back to the queue. */
  priority?: number;
  installationId: number;
  /** The plan group's export of its commit, begun by the job that queued this one (older jobs: none). */
  exportKey?: string;
}

/** Reports a plan group whose runs have all finished (comment, checks, label); retried on its own. */
export interface ReportPlanPayload {
  groupId: number;
  installationId: number;
}

/** Opens an in-progress `plangate/plan` for a plan group that is still running a moment after it started. */
export interface OpenPlanCheckPayload {
  groupId: number;
  installationId: number;
}

export const TASKS = {
  planPullRequest: "plan-pull-request",
  planProject: "plan-project",
  command: "command",
  notice: "notice",
  pullClosed: "pull-closed",
  review: "review",
  reportApply: "report-apply",
  notify: "notify",
  driftScan: "drift-scan",
  driftCheck: "drift-check",
  mergeGroup: "merge-group",
  openPlanCheck: "open-plan-check",
  reportPlan: "report-plan",
} as const;

export type TaskName = (typeof TASKS)[keyof typeof TASKS];

/**
 * Jobs that never enter the sandbox and mostly wait on GitHub (a report's
 * paced writes): besides the plan slots, a process runs EXPRESS_SLOTS
 * (start-worker.ts) of them at once in a worker pool of their own, so that a
 * report waiting out GitHub's pace (or a slow GitHub) never holds a slot a
 * plan could use. Project selection stays with the plans: the slot that
 * selected a PR's projects takes its first plan job at once.
 */
export const EXPRESS_TASKS: readonly string[] = [TASKS.reportPlan, TASKS.openPlanCheck, TASKS.notice, TASKS.review, TASKS.reportApply];

export interface JobRequest {
  task: TaskName;
  payload: object;
  /** Jobs sharing a queue name run one at a time, in order. */
  queueName?: string;
  /** A job with the same key replaces a pending one instead of adding another. */
  jobKey?: string;
  maxAttempts?: number;
  /** Not before this time (default: now). */
  runAt?: Date;
  /** Lower runs first (default 0): see planPriority. */
  priority?: number;
}

/** Adds a job through the queue's SQL API, so it commits or rolls back with the caller's transaction. */
export async function enqueue(db: Queryable, job: JobRequest): Promise<void> {
  await addJob(db, { ...job, maxAttempts: job.maxAttempts ?? 5 });
}

/** Adds many jobs in one statement, as enqueue adds one (a plan group's project jobs). */
export async function enqueueAll(db: Queryable, jobs: JobRequest[]): Promise<void> {
  await addJobs(db, jobs.map((job) => ({ ...job, maxAttempts: job.maxAttempts ?? 5 })));
}

/**
 * One job at a time per (repo, project, workspace): terraform state and locks
 * are per project. With `slots` (PLANGATE_REPO_CONCURRENCY), a repository's
 * projects share that many queues instead (a project always lands in the same
 * one), so at most `slots` of its jobs run at once, whatever it asks for.
 */
export function projectQueue(repo: string, project: string, workspace: string, slots?: number): string {
  if (!slots) return `project:${repo}:${project}:${workspace}`;
  const slot = createHash("sha256").update(`${project}\0${workspace}`).digest().readUInt32BE(0) % slots;
  return `repo:${repo}:slot-${slot}`;
}

/**
 * The priority of a plan group's n-th project job (from 0): every plan's first
 * project goes before any plan's second, and so on, so a PR of 2,000 projects
 * takes turns with a PR of one instead of going first (graphile-worker runs
 * lower priorities first, then the oldest). Drift checks go after every PR.
 * The queue stores priority as a smallint, so drift takes its largest value.
 */
export const planPriority = (n: number) => Math.min(n, DRIFT_PRIORITY - 1);
/** A finished plan's report goes before any plan: its comment is what the PR's author waits for. */
export const REPORT_PRIORITY = -1;
export const DRIFT_PRIORITY = 32_767;

/**
 * The job key of a batch of a plan group's runs (plan-jobs.ts), by the group's
 * export key and the batch's first run: the key's prefix names the group in
 * the queue's public view, where a batch looks for other groups' more urgent
 * jobs.
 */
export const batchJobKey = (exportKey: string | undefined, firstRunId: number) => (exportKey ? `${batchKeyPrefix(exportKey)}${firstRunId}` : `plan-batch:${firstRunId}`);
export const batchKeyPrefix = (exportKey: string) => `plan-batch:${exportKey}:`;

/** The queue of a pull request's own jobs: its plans, commands, reviews and close run in order. */
export const pullQueue = (repo: string, number: number) => `pull:${repo}#${number}`;
