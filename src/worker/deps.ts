import type { WorkerEvents } from "graphile-worker";
import type { Pool } from "../db/pool.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import type { ProjectRuns } from "../run/project-runs.js";
import type { GitHubFactory } from "../github/github.js";
import type { CommitExports } from "../git/commit-exports.js";
import type { RepoMirrors } from "../git/repo-mirror.js";
import type { CommentRenderer } from "../render/comment-renderer.js";
import type { Templates } from "../render/templates.js";
import type { EnvPolicy } from "../run/project-env.js";
import type { OrgPolicySource } from "./org-policies.js";
import type { ReportHandoff } from "./plan/report-handoff.js";

/** Signed links to run pages (web/run-links.ts makes them): a worker only asks for one. */
export interface RunPageLinks {
  url(groupId: number): string;
}

/** The series a worker reports its durations to (web/metrics.ts holds them). */
export interface WorkerMetrics {
  planDuration: { startTimer(labels: { engine: string }): (labels: { outcome: string }) => unknown; observe(labels: { engine: string; outcome: string }, seconds: number): void };
  planOverhead: { observe(labels: { engine: string }, seconds: number): void };
  /** Plans made in a sandbox entry shared with others of their batch. */
  plansTogether: { inc(count: number): void };
  timeJob<T>(task: string, fn: () => Promise<T>): Promise<T>;
}

export interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  /** A logger whose every line also carries `bindings` (delivery id, repo, PR, project, job id). */
  child(bindings: object): Logger;
}

/** Everything a worker needs, built once by the composition root. */
export interface WorkerDeps extends EnvPolicy {
  pool: Pool;
  github: GitHubFactory;
  mirrors: RepoMirrors;
  /** One read-only export of a commit per plan group, shared by its project jobs. */
  exports: CommitExports;
  sandbox: Sandbox;
  /** The one sandboxed run of a project, for every phase (src/run/project-runs.ts). */
  runs: ProjectRuns;
  templates: Templates;
  /** Renders a plan comment ahead, on a thread of its own, while the plan is stored; absent: the report renders it. */
  commentRenderer?: CommentRenderer;
  /** What a plan's last project job hands the group's report job in this process; absent: the report job reads it all. */
  reportHandoff?: ReportHandoff;
  log: Logger;
  dataDir: string;
  encryptionKey: Buffer;
  jobTimeoutMs: number;
  allowForkPrs: boolean;
  maskPatterns: RegExp[];
  maxComments: number;
  /** PLANGATE_REPO_CONCURRENCY: at most this many project jobs of one repository at once (unset: one per project). */
  repoConcurrency?: number;
  /** PLANGATE_PLAN_BATCH: the most runs of a large group one job plans, together in one sandbox entry (absent: MAX_BATCH). */
  planBatch?: number;
  /** Signs run page links (PLANGATE_PUBLIC_URL, else localhost); undefined only for the local CLI, which has no server. */
  runLinks?: RunPageLinks;
  /** Prometheus series this process reports (job and plan durations); absent for the local CLI. */
  metrics?: WorkerMetrics;
  /** PLANGATE_NOTIFY_URL and its signing secret, when apply outcomes are announced. */
  notify?: { url: string; secret: string };
  /** The organisation's policies (PLANGATE_POLICY_REPO), when set: every plan is judged by them too, or fails. */
  orgPolicies?: OrgPolicySource;
  /** The job queue's events in this process (a job is queued: `pool:listen:notification`); absent outside a job. */
  queueEvents?: WorkerEvents;
}
