import type { Queryable } from "./pool.js";

/** Deliveries recorded, by event and the handler's decision. */
export async function deliveryCounts(db: Queryable): Promise<{ event: string; outcome: string; n: number }[]> {
  return (await db.query("select event, outcome, count(*)::int as n from webhook_deliveries group by event, outcome")).rows;
}

/** Jobs in the queue by task: waiting (not locked) and running (locked by a worker). */
export async function jobCounts(db: Queryable): Promise<{ task: string; state: "queued" | "running"; n: number }[]> {
  const { rows } = await db.query(
    `select task_identifier as task, case when locked_at is null then 'queued' else 'running' end as state, count(*)::int as n
       from graphile_worker.jobs where attempts < max_attempts group by 1, 2`,
  );
  return rows;
}

/** Apply runs by their final status. */
export async function applyRunCounts(db: Queryable): Promise<{ status: string; n: number }[]> {
  return (await db.query("select status, count(*)::int as n from runs where kind = 'apply' group by status")).rows;
}

export async function lockCount(db: Queryable): Promise<number> {
  return (await db.query<{ n: number }>("select count(*)::int as n from locks")).rows[0]!.n;
}

export async function auditChainLength(db: Queryable): Promise<number> {
  return (await db.query<{ n: number }>("select count(*)::int as n from audit_events")).rows[0]!.n;
}

/** The migrations this database has applied. */
export async function appliedMigrations(db: Queryable): Promise<string[]> {
  return (await db.query<{ name: string }>("select name from plangate_migrations")).rows.map((r) => r.name);
}

/** Projects by the status of their last drift check. */
export async function driftCounts(db: Queryable): Promise<{ status: string; n: number }[]> {
  return (await db.query("select status, count(*)::int as n from drift_checks group by status")).rows;
}
