import { moveChainCheckpoint, readChainCheckpoint } from "../db/audit-chain-checkpoint.js";
import { inTransaction, type Pool } from "../db/pool.js";
import { walkAuditChain } from "./verify.js";

/** The most events one dashboard load verifies: a load's work stays bounded however long the chain is. */
export const CHECKPOINT_STEP = 5000;

/** How far the chain is verified: up to `through` (an event id); `behind` when newer events wait; `broken` names the first that does not link up. */
export interface ChainStatus {
  through: number;
  behind: boolean;
  broken?: { id: number; reason: string };
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
    const from = await readChainCheckpoint(tx, true);
    if (!from) return { through: (await readChainCheckpoint(tx, false))?.id ?? 0, behind: true };
    const walk = await walkAuditChain(tx, from, maxRows);
    if (walk.last.id !== from.id) await moveChainCheckpoint(tx, walk.last);
    if (!walk.ok) return { through: walk.last.id, behind: true, broken: { id: walk.brokenId, reason: walk.reason } };
    return { through: walk.last.id, behind: !walk.complete };
  });
}
