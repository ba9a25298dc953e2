import { inTransaction, type Pool, type Queryable } from "../db/pool.js";
import { walkAuditChain, type ChainPoint } from "./verify.js";

/** The most events one dashboard load verifies: a load's work stays bounded however long the chain is. */
export const CHECKPOINT_STEP = 5000;

/** How far the chain is verified: up to `through` (an event id); `behind` when newer events wait; `broken` names the first that does not link up. */
export interface ChainStatus {
  through: number;
  behind: boolean;
  broken?: { id: number; reason: string };
}

interface CheckpointRow {
  last_id: string;
  last_hash: string;
}

const pointOf = (row: CheckpointRow): ChainPoint => ({ id: Number(row.last_id), hash: row.last_hash });

async function readCheckpoint(db: Queryable, lock: boolean): Promise<ChainPoint | undefined> {
  const { rows } = await db.query<CheckpointRow>(`select last_id, last_hash from audit_chain_checkpoint${lock ? " for update skip locked" : ""}`);
  return rows[0] && pointOf(rows[0]);
}

/**
 * Verifies the audit chain on from its stored checkpoint, at most `maxRows`
 * events, and moves the checkpoint on: every event is verified once, not on
 * every page load. Events before the checkpoint are not walked again here
 * (`plangate audit verify` walks the whole chain). While another load holds
 * the checkpoint, this one only reads it.
 */
export async function advanceChainCheckpoint(pool: Pool, maxRows = CHECKPOINT_STEP): Promise<ChainStatus> {
  return inTransaction(pool, async (tx) => {
    const from = await readCheckpoint(tx, true);
    if (!from) return { through: (await readCheckpoint(tx, false))?.id ?? 0, behind: true };
    const walk = await walkAuditChain(tx, from, maxRows);
    if (walk.last.id !== from.id) await tx.query("update audit_chain_checkpoint set last_id = $1, last_hash = $2, verified_at = now()", [walk.last.id, walk.last.hash]);
    if (!walk.ok) return { through: walk.last.id, behind: true, broken: { id: walk.brokenId, reason: walk.reason } };
    return { through: walk.last.id, behind: !walk.complete };
  });
}
