import { auditEventsAfter } from "../db/audit-events.js";
import type { Queryable } from "../db/pool.js";
import { auditHash, GENESIS_HASH } from "./audit-log.js";

export type VerifyResult =
  | { ok: true; checked: number }
  | { ok: false; checked: number; brokenId: number; reason: string };

const PAGE = 5000;

/** A verified event: where a walk of the chain can go on from. */
export interface ChainPoint {
  id: number;
  hash: string;
}

export const CHAIN_START: ChainPoint = { id: 0, hash: GENESIS_HASH };

/** A walk's result, and the last event it verified; `complete` when it reached the chain's end. */
export type ChainWalk = VerifyResult & { last: ChainPoint; complete: boolean };

/**
 * Walks the chain in id order from `from` (an event already verified, or
 * the start) and stops at the first row whose links or hash do not hold,
 * at the end, or after `maxRows` rows.
 */
export async function walkAuditChain(db: Queryable, from: ChainPoint = CHAIN_START, maxRows = Infinity): Promise<ChainWalk> {
  let last = from;
  let checked = 0;
  for (;;) {
    const limit = Math.min(PAGE, maxRows - checked);
    const rows = await auditEventsAfter(db, last.id, limit);
    for (const r of rows) {
      if (r.prev_hash !== last.hash) {
        return { ok: false, checked, brokenId: r.id, reason: "prev_hash does not match the hash of the row before it", last, complete: false };
      }
      const { prev_hash, hash, ...content } = r;
      const recomputed = auditHash(prev_hash, { ...content, created_at: r.created_at.toISOString() });
      if (recomputed !== hash) return { ok: false, checked, brokenId: r.id, reason: "content does not match its hash", last, complete: false };
      last = { id: r.id, hash };
      checked++;
    }
    if (rows.length < limit) return { ok: true, checked, last, complete: true };
    if (checked >= maxRows) return { ok: true, checked, last, complete: false };
  }
}

/** Walks the whole chain in id order and stops at the first row whose links or hash do not hold. */
export async function verifyAuditChain(db: Queryable): Promise<VerifyResult> {
  const walk = await walkAuditChain(db);
  return walk.ok ? { ok: true, checked: walk.checked } : { ok: false, checked: walk.checked, brokenId: walk.brokenId, reason: walk.reason };
}
