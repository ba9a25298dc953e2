import { recordDelivery } from "../db/deliveries.js";
import { inTransaction, type Pool } from "../db/pool.js";
import { enqueue } from "../jobs/jobs.js";
import type { Decision } from "./decision.js";

export interface Delivery {
  id: string;
  event: string;
  payload: { action?: string; repository?: { full_name?: string }; installation?: { id?: number } };
}

/**
 * Durably records a delivery and enqueues its jobs in one transaction; a
 * redelivery (same id) changes nothing. Returns false for a duplicate.
 */
export async function recordAndEnqueue(pool: Pool, delivery: Delivery, decision: Decision): Promise<boolean> {
  return inTransaction(pool, async (tx) => {
    const fresh = await recordDelivery(tx, {
      id: delivery.id,
      event: delivery.event,
      action: delivery.payload.action,
      repo: delivery.payload.repository?.full_name,
      installationId: delivery.payload.installation?.id,
      outcome: decision.outcome,
    });
    if (fresh) for (const job of decision.jobs) await enqueue(tx, job);
    return fresh;
  });
}
