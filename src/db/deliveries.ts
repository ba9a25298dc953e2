import type { Queryable } from "./pool.js";

export interface DeliveryRecord {
  id: string;
  event: string;
  action?: string;
  repo?: string;
  installationId?: number;
  outcome: string;
}

/** Records a delivery; false when its id was seen before (a redelivery). */
export async function recordDelivery(db: Queryable, d: DeliveryRecord): Promise<boolean> {
  const { rowCount } = await db.query(
    `insert into webhook_deliveries (id, event, action, repo, installation_id, outcome)
     values ($1, $2, $3, $4, $5, $6) on conflict (id) do nothing`,
    [d.id, d.event, d.action ?? null, d.repo ?? null, d.installationId ?? null, d.outcome],
  );
  return rowCount === 1;
}
