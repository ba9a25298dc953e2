import { recordDelivery } from "../db/deliveries.js";
import { recordPusher } from "../db/pull-pushers.js";
import { inTransaction, type Pool } from "../db/pool.js";
import { isDatabaseUnavailable } from "../db/unavailable.js";
import { enqueue } from "../jobs/jobs.js";
import type { Decision } from "./decision.js";

export interface Delivery {
  id: string;
  event: string;
  payload: { action?: string; repository?: { full_name?: string }; installation?: { id?: number } };
}

/** The webhook's answer while the database is down: 503, so the delivery is not taken as accepted and is redelivered. */
export class DeliveryNotRecorded extends Error {
  readonly status = 503;
  constructor(cause: unknown) {
    super(`the database is unavailable, the delivery was not recorded (redeliver it): ${(cause as Error).message}`, { cause });
  }
}

/**
 * Durably records a delivery and enqueues its jobs in one transaction; a
 * redelivery (same id) changes nothing. Returns false for a duplicate.
 * Throws DeliveryNotRecorded (answered 503) while the database is unavailable.
 */
export async function recordAndEnqueue(pool: Pool, delivery: Delivery, decision: Decision): Promise<boolean> {
  try {
    return await record(pool, delivery, decision);
  } catch (error) {
    throw isDatabaseUnavailable(error) ? new DeliveryNotRecorded(error) : error;
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
    if (fresh) for (const job of decision.jobs) await enqueue(tx, job);
    return fresh;
  });
}
