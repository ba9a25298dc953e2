import type { Queryable } from "./pool.js";

/** The advisory lock that serialises writers of the audit chain (migrate.ts holds 7_263_001). */
const AUDIT_CHAIN_LOCK = 7_263_002;

/** An audit_events row's hashed content; `created_at` as ISO text so it survives the database round trip. */
export interface AuditEventContent {
  id: number;
  created_at: string;
  action: string;
  actor: string | null;
  repo: string | null;
  pull_number: number | null;
  project: string | null;
  workspace: string | null;
  sha: string | null;
  run_id: number | null;
  details: Record<string, unknown>;
}

/** A row as stored: its content and its links in the chain. */
export interface StoredAuditEvent extends Omit<AuditEventContent, "created_at"> {
  created_at: Date;
  prev_hash: string;
  hash: string;
}

/**
 * Takes the chain's writer lock until the transaction ends, then reads the
 * hash of the last event (null: none yet) and the id of the next one.
 */
export async function lockAuditChainTail(tx: Queryable, count = 1): Promise<{ lastHash: string | null; nextIds: number[] }> {
  await tx.query("select pg_advisory_xact_lock($1)", [AUDIT_CHAIN_LOCK]);
  // After the lock, in a statement of its own: it sees the event a transaction that held the lock before committed.
  const { rows } = await tx.query<{ hash: string | null; ids: string[] }>(
    "select (select hash from audit_events order by id desc limit 1) as hash, array(select nextval('audit_events_id_seq') from generate_series(1, $1::int)) as ids",
    [count],
  );
  return { lastHash: rows[0]!.hash, nextIds: rows[0]!.ids.map(Number).sort((a, b) => a - b) };
}

/** A row as the chain links it: its content, the hash before it and its own. */
export interface LinkedAuditEvent {
  row: AuditEventContent;
  prevHash: string;
  hash: string;
}

/** Inserts linked rows in one statement (many events of one transaction cost one round trip). */
export async function insertAuditEvents(tx: Queryable, linked: LinkedAuditEvent[]): Promise<void> {
  if (!linked.length) return;
  const records = linked.map(({ row, prevHash, hash }) => ({ ...row, prev_hash: prevHash, hash }));
  await tx.query(
    `insert into audit_events (id, created_at, action, actor, repo, pull_number, project, workspace, sha, run_id, details, prev_hash, hash)
     select id, created_at, action, actor, repo, pull_number, project, workspace, sha, run_id, coalesce(details, '{}'), prev_hash, hash
       from jsonb_to_recordset($1::jsonb) as e(id bigint, created_at timestamptz, action text, actor text, repo text, pull_number int, project text,
            workspace text, sha text, run_id bigint, details jsonb, prev_hash text, hash text)
      order by id`,
    [JSON.stringify(records)],
  );
}

/** Up to `limit` events after the event `afterId`, in id order. */
export async function auditEventsAfter(db: Queryable, afterId: number, limit: number): Promise<StoredAuditEvent[]> {
  const { rows } = await db.query<StoredAuditEvent>(
    `select id, created_at, action, actor, repo, pull_number, project, workspace, sha, run_id, details, prev_hash, hash
       from audit_events where id > $1 order by id limit $2`,
    [afterId, limit],
  );
  return rows;
}

/**
 * The id just before the first event recorded at or after `time` (an export
 * from a time goes on from there, in id order), or the last id when none is.
 */
export async function auditEventIdBefore(db: Queryable, time: Date): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `select coalesce((select min(id) - 1 from audit_events where created_at >= $1),
                     (select max(id) from audit_events), 0)::bigint as id`,
    [time],
  );
  return rows[0]!.id;
}
