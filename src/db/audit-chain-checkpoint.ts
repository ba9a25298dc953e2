import type { Queryable } from "./pool.js";

/** The last audit event verified, and its hash. */
export interface ChainCheckpoint {
  id: number;
  hash: string;
}

/**
 * Reads the checkpoint (one row). With `lock`, locks it for the transaction,
 * or gives undefined at once while another transaction holds it.
 */
export async function readChainCheckpoint(db: Queryable, lock: boolean): Promise<ChainCheckpoint | undefined> {
  const { rows } = await db.query<{ last_id: string; last_hash: string }>(
    `select last_id, last_hash from audit_chain_checkpoint${lock ? " for update skip locked" : ""}`,
  );
  return rows[0] && { id: Number(rows[0].last_id), hash: rows[0].last_hash };
}

/** Moves the checkpoint on to an event just verified. */
export async function moveChainCheckpoint(tx: Queryable, to: ChainCheckpoint): Promise<void> {
  await tx.query("update audit_chain_checkpoint set last_id = $1, last_hash = $2, verified_at = now()", [to.id, to.hash]);
}
