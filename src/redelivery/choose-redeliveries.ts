import type { HookDelivery } from "../github/github.js";

/** How many times plangate asks for one delivery (guid) at most: one that fails every time is not asked for forever. */
export const REDELIVERIES_PER_DELIVERY = 3;

/** What plangate knows of the failed deliveries' guids. */
export interface KnownDeliveries {
  /** Guids plangate recorded (webhook_deliveries): it has them, whatever GitHub's log says. */
  recorded: Set<string>;
  /** Attempts (GitHub's delivery ids) plangate asked GitHub to send again. */
  askedIds: Set<number>;
  /** How many attempts of each guid plangate asked for. */
  askedPerGuid: Map<string, number>;
}

export interface Redeliveries {
  /** One attempt per delivery to ask GitHub for again. */
  ask: HookDelivery[];
  /** Deliveries still failing after REDELIVERIES_PER_DELIVERY asks: left alone (their newest attempt). */
  givenUp: HookDelivery[];
}

const delivered = (a: HookDelivery) => a.statusCode >= 200 && a.statusCode < 300;

/** Whether `a` is the later of two attempts. */
const later = (a: HookDelivery, b: HookDelivery) => a.deliveredAt.getTime() > b.deliveredAt.getTime() || (a.deliveredAt.getTime() === b.deliveredAt.getTime() && a.id > b.id);

/**
 * The deliveries to ask GitHub for again, from the attempts in its log: each
 * delivery (guid) none of whose attempts got a 2xx and that plangate did not
 * record, by its newest attempt; unless that attempt was asked for already
 * (its redelivery may not be in the log yet), or the delivery was asked for
 * REDELIVERIES_PER_DELIVERY times. A redelivery carries the same guid, so one
 * that arrives twice is recorded once and plans nothing twice.
 */
export function chooseRedeliveries(attempts: HookDelivery[], known: KnownDeliveries): Redeliveries {
  const newest = new Map<string, HookDelivery>();
  const done = new Set<string>();
  for (const a of attempts) {
    if (delivered(a)) done.add(a.guid);
    const seen = newest.get(a.guid);
    if (!seen || later(a, seen)) newest.set(a.guid, a);
  }
  const chosen: Redeliveries = { ask: [], givenUp: [] };
  for (const [guid, attempt] of newest) {
    if (done.has(guid) || known.recorded.has(guid) || known.askedIds.has(attempt.id)) continue;
    if ((known.askedPerGuid.get(guid) ?? 0) >= REDELIVERIES_PER_DELIVERY) chosen.givenUp.push(attempt);
    else chosen.ask.push(attempt);
  }
  // Oldest first: deliveries are sent again in the order they last failed (a PR's opened before its synchronize).
  chosen.ask.sort((a, b) => (later(a, b) ? 1 : later(b, a) ? -1 : 0));
  return chosen;
}

/** The guids of attempts that did not get a 2xx: the only ones the database is asked about. */
export const failedGuids = (attempts: HookDelivery[]) => [...new Set(attempts.filter((a) => !delivered(a)).map((a) => a.guid))];
