import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { applyRunCounts, auditChainLength, deliveryCounts, driftCounts, jobCounts, lockCount } from "../db/metrics-queries.js";
import type { Pool } from "../db/pool.js";

/** The queue-depth gauge an autoscaler follows (deploy/kubernetes/worker-scaledobject.yaml). */
export const JOBS_METRIC = { name: "plangate_jobs", labelNames: ["task", "state"] } as const;

/**
 * plangate's Prometheus series. What the database knows (deliveries, queue,
 * applies, locks, audit chain) is read at scrape time, so every process
 * reports the same totals; durations and GitHub calls are this process's own.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly jobDuration: Histogram<"task" | "outcome">;
  readonly planDuration: Histogram<"engine" | "outcome">;
  readonly planOverhead: Histogram<"engine">;
  readonly commitExports: Counter;
  readonly commitExportsDerived: Counter;
  readonly plansTogether: Counter;
  readonly githubRequests: Counter<"method" | "status">;
  readonly githubRateLimitRemaining: Gauge;
  readonly redeliveriesRequested: Counter;
  readonly redeliverySweeps: Counter<"outcome">;

  constructor(pool: Pool) {
    const registers = [this.registry];
    this.jobDuration = new Histogram({ name: "plangate_job_duration_seconds", help: "Queue jobs run by this process, by task and outcome.", labelNames: ["task", "outcome"], buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900], registers });
    this.planDuration = new Histogram({ name: "plangate_plan_duration_seconds", help: "Project plans (checkout, init, plan, show) run by this process.", labelNames: ["engine", "outcome"], buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900], registers });
    this.planOverhead = new Histogram({ name: "plangate_plan_overhead_seconds", help: "Project plans: from the job's start to its first terraform command's start (export, workspace, sandbox set-up).", labelNames: ["engine"], buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers });
    this.commitExports = new Counter({ name: "plangate_commit_exports_total", help: "Commits exported for planning (one per plan group, shared read-only by its project jobs).", registers });
    this.commitExportsDerived = new Counter({ name: "plangate_commit_exports_derived_total", help: "Exports of those derived from the repository's previous export, writing only the paths the commit changed.", registers });
    this.plansTogether = new Counter({ name: "plangate_plans_together_total", help: "Project plans made in a sandbox entry shared with other projects of their batch (each in a nested sandbox of its own).", registers });
    this.githubRequests = new Counter({ name: "plangate_github_requests_total", help: "GitHub API requests made by this process, by method and status.", labelNames: ["method", "status"], registers });
    this.githubRateLimitRemaining = new Gauge({ name: "plangate_github_rate_limit_remaining", help: "x-ratelimit-remaining of the last GitHub API response.", registers });
    this.redeliveriesRequested = new Counter({ name: "plangate_redeliveries_requested_total", help: "Failed webhook deliveries this process asked GitHub to send again (the redelivery sweep).", registers });
    this.redeliverySweeps = new Counter({ name: "plangate_redelivery_sweeps_total", help: "Redelivery sweeps of the App's delivery log by this process, by outcome (swept, busy: another process was sweeping, failed).", labelNames: ["outcome"], registers });
    for (const outcome of ["swept", "busy", "failed"]) this.redeliverySweeps.inc({ outcome }, 0);
    new Gauge({
      name: "plangate_deliveries_total",
      help: "Webhook deliveries recorded, by event and outcome (the handler's decision).",
      labelNames: ["event", "outcome"],
      registers,
      async collect() {
        this.reset();
        for (const r of await deliveryCounts(pool)) this.set({ event: r.event, outcome: r.outcome }, r.n);
      },
    });
    new Gauge({
      name: JOBS_METRIC.name,
      help: "Jobs in the queue, by task and state (queued, running).",
      labelNames: [...JOBS_METRIC.labelNames],
      registers,
      async collect() {
        this.reset();
        for (const r of await jobCounts(pool)) this.set({ task: r.task, state: r.state }, r.n);
      },
    });
    new Gauge({
      name: "plangate_applies",
      help: "Project applies, by status (succeeded, failed, skipped, denied, interrupted).",
      labelNames: ["status"],
      registers,
      async collect() {
        this.reset();
        for (const r of await applyRunCounts(pool)) this.set({ status: r.status }, r.n);
      },
    });
    new Gauge({
      name: "plangate_drift_projects",
      help: "Projects by the result of their last drift check (clean, drifted, failed).",
      labelNames: ["status"],
      registers,
      async collect() {
        this.reset();
        for (const r of await driftCounts(pool)) this.set({ status: r.status }, r.n);
      },
    });
    new Gauge({ name: "plangate_locks", help: "Project locks held by pull requests.", registers, async collect() { this.set(await lockCount(pool)); } });
    new Gauge({ name: "plangate_audit_chain_length", help: "Events in the audit log's hash chain.", registers, async collect() { this.set(await auditChainLength(pool)); } });
  }

  /** For the GitHub port: counts each API response and keeps the rate limit left. */
  readonly github = {
    response: (method: string, status: number, rateLimitRemaining: number | undefined) => {
      this.githubRequests.inc({ method, status: String(status) });
      if (rateLimitRemaining !== undefined) this.githubRateLimitRemaining.set(rateLimitRemaining);
    },
  };

  /** For the redelivery sweeps: counts each sweep by outcome and each redelivery asked for. */
  readonly redelivery = {
    swept: (outcome: string) => this.redeliverySweeps.inc({ outcome }),
    asked: () => this.redeliveriesRequested.inc(),
  };

  /** Times fn as a job of `task`. */
  async timeJob<T>(task: string, fn: () => Promise<T>): Promise<T> {
    const end = this.jobDuration.startTimer({ task });
    try {
      const result = await fn();
      end({ outcome: "ok" });
      return result;
    } catch (error) {
      end({ outcome: "error" });
      throw error;
    }
  }
}
