import type { Queryable } from "./pool.js";

/** Records that these queue workers are alive now. */
export async function beat(db: Queryable, workerIds: string[]): Promise<void> {
  if (!workerIds.length) return;
  await db.query("insert into worker_heartbeats (worker_id) select unnest($1::text[]) on conflict (worker_id) do update set seen_at = now()", [workerIds]);
}

/** Workers holding job locks older than `stale` that have not beaten within it: presumed dead. */
export async function silentLockHolders(db: Queryable, stale: string): Promise<string[]> {
  const { rows } = await db.query<{ locked_by: string }>(
    `select distinct j.locked_by from graphile_worker.jobs j
      where j.locked_by is not null and j.locked_at < now() - $1::interval
        and not exists (select 1 from worker_heartbeats h where h.worker_id = j.locked_by and h.seen_at > now() - $1::interval)`,
    [stale],
  );
  return rows.map((r) => r.locked_by);
}

export async function forgetWorkers(db: Queryable, workerIds: string[]): Promise<void> {
  await db.query("delete from worker_heartbeats where worker_id = any($1)", [workerIds]);
}

/** Heartbeats of workers silent for ten times `stale` are dropped. */
export async function forgetSilentWorkers(db: Queryable, stale: string): Promise<void> {
  await db.query("delete from worker_heartbeats where seen_at < now() - ($1::interval * 10)", [stale]);
}
