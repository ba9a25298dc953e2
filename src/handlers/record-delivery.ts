import { recordDelivery } from "../db/deliveries.js";
import { recordBranchPusher, recordPusher } from "../db/pull-pushers.js";
import { inTransaction, type Pool } from "../db/pool.js";
import { isDatabaseUnavailable } from "../db/unavailable.js";
import { enqueue } from "../jobs/jobs.js";
import type { Decision } from "./decision.js";

export interface Delivery {
  id: string;
  event: string;
  payload: { action?: string; repository?: { full_name?: string }; installation?: { id?: number } };
}

/**
 * The webhook's answer when a delivery could not be recorded: 503 while the
 * database is unavailable (the delivery is not taken as accepted and is
 * redelivered), else 500. Its message is all the sender sees, so it never
 * carries the cause's own words (they name the database, its host, its
 * roles): the cause is kept for the log.
 */
export class DeliveryNotRecorded extends Error {
  override readonly name = "DeliveryNotRecorded";
  readonly status: 500 | 503;
  constructor(cause: unknown) {
    const unavailable = isDatabaseUnavailable(cause);
    super(unavailable ? "the database is unavailable, the delivery was not recorded (redeliver it)" : "the delivery could not be recorded (redeliver it)", { cause });
    this.status = unavailable ? 503 : 500;
  }
}

/**
 * Durably records a delivery and enqueues its jobs in one transaction; a
 * redelivery (same id) changes nothing. Returns false for a duplicate.
 * Throws DeliveryNotRecorded (503 while the database is unavailable, else 500).
 */
export async function recordAndEnqueue(pool: Pool, delivery: Delivery, decision: Decision): Promise<boolean> {
  try {
    return await record(pool, delivery, decision);
  } catch (error) {
    throw new DeliveryNotRecorded(error);
  }
}

function record(pool: Pool, delivery: Delivery, decision: Decision): Promise<boolean> {
  return inTransaction(pool, async (tx) => {
    const fresh = await recordDelivery(tx, {
      id: delivery.id,
      event: delivery.event,
      action: delivery.payload.action,
      repo: delivery.payload.repository?.full_name,
      installationId: delivery.payload.installation?.id,
      outcome: decision.outcome,
    });
    if (fresh && decision.pusher) await recordPusher(tx, decision.pusher);
    if (fresh && decision.branchPusher) await recordBranchPusher(tx, decision.branchPusher);
    if (fresh) for (const job of decision.jobs) await enqueue(tx, job);
    return fresh;
  });
}
