import { insertAuditEvents, lockAuditChainTail, type LinkedAuditEvent, type AuditEventContent } from "../db/audit-events.js";
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
  | "policy.overridden"
  | "drift.detected"
  | "drift.resolved"
  | "credentials.issued";

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
export type AuditRowContent = AuditEventContent;

export const GENESIS_HASH = "0".repeat(64);

export function auditHash(prevHash: string, row: AuditRowContent): string {
  return sha256Hex(`${prevHash}\n${canonicalJson(row)}`);
}

/**
 * Appends one event to the hash chain. Must run inside a transaction: the
 * advisory lock serialises writers until commit, so ids follow chain order.
 */
export async function appendAuditEvent(tx: Queryable, event: AuditEvent): Promise<number> {
  return (await appendAuditEvents(tx, [event]))[0]!;
}

/**
 * Appends events to the hash chain in their order, under one hold of the
 * chain's lock and in one insert (a plan of 2,000 projects books its locks
 * and reused plans at once). Returns their ids. Must run inside a transaction.
 */
export async function appendAuditEvents(tx: Queryable, events: AuditEvent[]): Promise<number[]> {
  if (!events.length) return [];
  const { lastHash, nextIds } = await lockAuditChainTail(tx, events.length);
  const createdAt = new Date().toISOString();
  let prevHash = lastHash ?? GENESIS_HASH;
  const linked: LinkedAuditEvent[] = events.map((event, i) => {
    const row: AuditRowContent = {
      id: nextIds[i]!,
      created_at: createdAt,
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
    const link = { row, prevHash, hash: auditHash(prevHash, row) };
    prevHash = link.hash;
    return link;
  });
  await insertAuditEvents(tx, linked);
  return nextIds;
}
