import type { Pool, Queryable } from "./pool.js";

/** Advisory lock id: one redelivery sweep at a time, across every plangate process (migrate's is 7_263_001). */
const SWEEP_LOCK = 7_263_002;

/**
 * Runs `fn` holding the sweep lock, or returns undefined at once when another
 * process holds it. The lock is a session lock on a client of its own, so the
 * sweep's writes commit one by one; a process that dies drops it with its connection.
 */
export async function whileSweepLocked<T>(pool: Pool, fn: () => Promise<T>): Promise<{ result: T } | undefined> {
  const client = await pool.connect();
  // A client that may still hold the lock is closed, never handed back to the pool holding it.
  let clean = false;
  try {
    const { rows } = await client.query<{ locked: boolean }>("select pg_try_advisory_lock($1) as locked", [SWEEP_LOCK]);
    if (!rows[0]!.locked) {
      clean = true;
      return undefined;
    }
    try {
      return { result: await fn() };
    } finally {
      clean = await client.query("select pg_advisory_unlock($1)", [SWEEP_LOCK]).then(() => true, () => false);
    }
  } finally {
    client.release(!clean);
  }
}

/** The newest delivered_at a complete sweep saw, if any sweep completed. */
export async function sweepMark(db: Queryable): Promise<Date | undefined> {
  const { rows } = await db.query<{ swept_to: Date }>("select swept_to from webhook_redelivery_mark");
  return rows[0]?.swept_to;
}

/** Moves the mark to `sweptTo` (never back). */
export async function moveSweepMark(db: Queryable, sweptTo: Date): Promise<void> {
  await db.query(
    `insert into webhook_redelivery_mark (swept_to) values ($1)
     on conflict (only_row) do update set swept_to = greatest(webhook_redelivery_mark.swept_to, excluded.swept_to), swept_at = now()`,
    [sweptTo],
  );
}

/** The guids among `guids` that plangate recorded (webhook_deliveries: it has them, whatever GitHub's log says). */
export async function recordedGuids(db: Queryable, guids: string[]): Promise<Set<string>> {
  if (!guids.length) return new Set();
  const { rows } = await db.query<{ id: string }>("select id from webhook_deliveries where id = any($1)", [guids]);
  return new Set(rows.map((r) => r.id));
}

/** What was asked already for these guids: the attempts (delivery ids) asked for, and how many per guid. */
export async function redeliveriesAsked(db: Queryable, guids: string[]): Promise<{ deliveryIds: Set<number>; perGuid: Map<string, number> }> {
  const asked = { deliveryIds: new Set<number>(), perGuid: new Map<string, number>() };
  if (!guids.length) return asked;
  const { rows } = await db.query<{ delivery_id: number; guid: string }>("select delivery_id, guid from webhook_redeliveries where guid = any($1)", [guids]);
  for (const r of rows) {
    asked.deliveryIds.add(r.delivery_id);
    asked.perGuid.set(r.guid, (asked.perGuid.get(r.guid) ?? 0) + 1);
  }
  return asked;
}

export interface RedeliveryAsked {
  deliveryId: number;
  guid: string;
  event: string;
  action: string | null;
  statusCode: number;
  /** GitHub's answer when it refused to send it again. */
  refused?: number;
}

/** Records that GitHub was asked to send this attempt again (and whether it refused). */
export async function recordRedelivery(db: Queryable, r: RedeliveryAsked): Promise<void> {
  await db.query(
    `insert into webhook_redeliveries (delivery_id, guid, event, action, status_code, refused) values ($1, $2, $3, $4, $5, $6)
     on conflict (delivery_id) do nothing`,
    [r.deliveryId, r.guid, r.event, r.action, r.statusCode, r.refused ?? null],
  );
}
