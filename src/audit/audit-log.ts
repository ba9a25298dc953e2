import type { Queryable } from "../db/pool.js";
import { canonicalJson, sha256Hex } from "../plans/canonical.js";

export type AuditAction =
  | "command.received"
  | "command.rejected"
  | "plan.started"
  | "plan.succeeded"
  | "plan.failed"
  | "approval.changed"
  | "apply.requested"
  | "apply.denied"
  | "apply.started"
  | "apply.succeeded"
  | "apply.failed"
  | "apply.interrupted"
  | "lock.acquired"
  | "lock.released"
  | "config.invalid"
  | "policy.violated"
  | "drift.detected"
  | "drift.resolved";

export interface AuditEvent {
  action: AuditAction;
  actor?: string | null;
  repo?: string | null;
  pullNumber?: number | null;
  project?: string | null;
  workspace?: string | null;
  sha?: string | null;
  runId?: number | null;
  details?: Record<string, unknown>;
}

/** The hashed content of a row; `created_at` as ISO text so it survives the database round trip. */
export interface AuditRowContent {
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

export const GENESIS_HASH = "0".repeat(64);
const AUDIT_CHAIN_LOCK = 7_263_002;

export function auditHash(prevHash: string, row: AuditRowContent): string {
  return sha256Hex(`${prevHash}\n${canonicalJson(row)}`);
}

/**
 * Appends one event to the hash chain. Must run inside a transaction: the
 * advisory lock serialises writers until commit, so ids follow chain order.
 */
export async function appendAuditEvent(tx: Queryable, event: AuditEvent): Promise<number> {
  await tx.query("select pg_advisory_xact_lock($1)", [AUDIT_CHAIN_LOCK]);
  // After the lock, in a statement of its own: it sees the event a transaction that held the lock before committed.
  const { rows } = await tx.query<{ hash: string | null; id: number }>(
    "select (select hash from audit_events order by id desc limit 1) as hash, nextval('audit_events_id_seq')::bigint as id",
  );
  const prevHash = rows[0]!.hash ?? GENESIS_HASH;
  const row: AuditRowContent = {
    id: rows[0]!.id,
    created_at: new Date().toISOString(),
    action: event.action,
    actor: event.actor ?? null,
    repo: event.repo ?? null,
    pull_number: event.pullNumber ?? null,
    project: event.project ?? null,
    workspace: event.workspace ?? null,
    sha: event.sha ?? null,
    run_id: event.runId ?? null,
    details: event.details ?? {},
  };
  await tx.query(
    `insert into audit_events (id, created_at, action, actor, repo, pull_number, project, workspace, sha, run_id, details, prev_hash, hash)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [row.id, row.created_at, row.action, row.actor, row.repo, row.pull_number, row.project, row.workspace, row.sha, row.run_id,
      JSON.stringify(row.details), prevHash, auditHash(prevHash, row)],
  );
  return row.id;
}
