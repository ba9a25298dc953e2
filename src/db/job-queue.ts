import type { Queryable } from "./pool.js";

/** A job as graphile_worker.add_job takes it. */
export interface NewJob {
  task: string;
  payload: object;
  queueName?: string;
  jobKey?: string;
  maxAttempts: number;
  runAt?: Date;
  /** Lower runs first (graphile-worker's own ordering: priority, then run_at); default 0. */
  priority?: number;
}

/** Adds a job through the queue's SQL API, so it commits or rolls back with the caller's transaction. */
export async function addJob(db: Queryable, job: NewJob): Promise<void> {
  await db.query("select graphile_worker.add_job($1, $2::json, queue_name => $3, max_attempts => $4, job_key => $5, run_at => $6, priority => $7)", [
    job.task,
    JSON.stringify(job.payload),
    job.queueName ?? null,
    job.maxAttempts,
    job.jobKey ?? null,
    job.runAt?.toISOString() ?? null,
    job.priority ?? 0,
  ]);
}

/** Adds many jobs in one statement (graphile_worker.add_jobs), in the caller's transaction. */
export async function addJobs(db: Queryable, jobs: NewJob[]): Promise<void> {
  if (!jobs.length) return;
  const specs = jobs.map((job) => ({
    identifier: job.task,
    payload: job.payload,
    queue_name: job.queueName ?? null,
    run_at: job.runAt?.toISOString() ?? null,
    max_attempts: job.maxAttempts,
    job_key: job.jobKey ?? null,
    priority: job.priority ?? 0,
  }));
  await db.query("select 1 from graphile_worker.add_jobs(array(select json_populate_recordset(null::graphile_worker.job_spec, $1::json)))", [JSON.stringify(specs)]);
}
/**
 * Whether a job more urgent than `priority` (a lower number), and not one
 * whose key starts with `exceptKeys` (a plan group's batches), is ready and
 * not taken: a batch of plans then hands the rest of its runs back to the
 * queue. Read from the queue's public view; a job whose named queue is busy
 * counts too (the batch then goes on after one more hop).
 */
export async function moreUrgentJobWaiting(db: Queryable, priority: number, exceptKeys?: string): Promise<boolean> {
  const { rows } = await db.query(
    "select 1 from graphile_worker.jobs where priority < $1 and locked_at is null and run_at <= now() and attempts < max_attempts and ($2::text is null or key is null or left(key, length($2)) <> $2) limit 1",
    [priority, exceptKeys ?? null],
  );
  return rows.length > 0;
}

/**
 * Whether any job but those of `exceptTasks` is ready and not taken,
 * whatever its priority: a free worker slot has something to do (then no
 * batch hands it half its runs).
 */
export async function jobWaiting(db: Queryable, exceptTasks: readonly string[] = []): Promise<boolean> {
  const { rows } = await db.query("select 1 from graphile_worker.jobs where locked_at is null and run_at <= now() and attempts < max_attempts and task_identifier <> all($1::text[]) limit 1", [exceptTasks]);
  return rows.length > 0;
}
