import type { Logger } from "pino";
import type { Pool } from "../db/pool.js";
import { moveSweepMark, recordedGuids, recordRedelivery, redeliveriesAsked, sweepMark, whileSweepLocked } from "../db/redeliveries.js";
import type { AppHookDeliveries, HookDelivery } from "../github/github.js";
import { GITHUB_REDELIVERY_MAX_AGE_MS } from "../github/limits.js";
import { chooseRedeliveries, failedGuids } from "./choose-redeliveries.js";

/** How far back the first sweep of a database looks (no sweep has completed on it yet). */
export const FIRST_SWEEP_LOOKBACK_MS = 24 * 3_600_000;

/** Each sweep looks this far back before the mark: an attempt GitHub logs late (its answer took up to GitHub's 10 s timeout) is still seen. */
export const SWEEP_OVERLAP_MS = 10 * 60_000;

/** How far back a sweep looks at most: an hour short of GitHub's limit, so what it asks for is still redeliverable. */
const REDELIVERABLE_MS = GITHUB_REDELIVERY_MAX_AGE_MS - 3_600_000;

/** swept: the log was read and every redelivery it needed asked for; busy: another process was sweeping; failed: GitHub or the database failed (the next sweep looks again). */
export type SweepOutcome = "swept" | "busy" | "failed";

export interface SweepResult {
  outcome: SweepOutcome;
  /** The attempts (GitHub's delivery ids) GitHub accepted to send again. */
  asked: number[];
  /** The attempts GitHub refused to send again (too old, unknown, invalid): not asked for again. */
  refused: number[];
}

/** GitHub's answers to a redelivery request that asking again will not change (the endpoint's 400 and 422, and 404). */
const FINAL_REFUSALS = new Set([400, 404, 422]);

export interface SweepDeps {
  pool: Pool;
  hooks: AppHookDeliveries;
  log: Logger;
  /** Told of each redelivery GitHub accepted to make. */
  onAsked?: () => void;
}

/**
 * One sweep of the App's delivery log (DESIGN.md section 3, "Nothing lost"),
 * by one process at a time: reads the attempts since the last complete
 * sweep's mark, and asks GitHub to send again each failed delivery plangate
 * did not record (chooseRedeliveries). The mark moves only when every ask
 * succeeded, so a sweep that failed part-way is looked at again.
 */
export async function sweepDeliveries(deps: SweepDeps): Promise<SweepResult> {
  const locked = await whileSweepLocked(deps.pool, () => sweepLocked(deps));
  return locked?.result ?? { outcome: "busy", asked: [], refused: [] };
}

async function sweepLocked(deps: SweepDeps): Promise<SweepResult> {
  const { pool, hooks, log } = deps;
  const now = Date.now();
  const mark = await sweepMark(pool);
  const since = new Date(Math.max(now - REDELIVERABLE_MS, mark ? mark.getTime() - SWEEP_OVERLAP_MS : now - FIRST_SWEEP_LOOKBACK_MS));
  const attempts = await hooks.deliveriesSince(since);
  const guids = failedGuids(attempts);
  const asked = await redeliveriesAsked(pool, guids);
  const { ask, givenUp } = chooseRedeliveries(attempts, { recorded: await recordedGuids(pool, guids), askedIds: asked.deliveryIds, askedPerGuid: asked.perGuid });
  for (const a of givenUp) log.warn({ deliveryId: a.guid, event: a.event, action: a.action, statusCode: a.statusCode }, "a webhook delivery still fails after plangate asked GitHub for it again: it is not asked for any more (redeliver it from the App's settings once the cause is fixed)");

  const done: number[] = [];
  const refused: number[] = [];
  let failed = false;
  for (const a of ask) {
    const asked = { deliveryId: a.id, guid: a.guid, event: a.event, action: a.action, statusCode: a.statusCode };
    try {
      await hooks.redeliver(a.id);
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status !== undefined && FINAL_REFUSALS.has(status)) {
        // Kept as asked, so it is not asked for every sweep; the mark moves past it.
        log.warn({ deliveryId: a.guid, attempt: a.id, status }, "GitHub refused to redeliver a failed webhook delivery: it is not asked for again");
        await recordRedelivery(pool, { ...asked, refused: status });
        refused.push(a.id);
      } else {
        failed = true;
        log.warn({ deliveryId: a.guid, attempt: a.id, err: error }, "GitHub did not take a redelivery request: the next sweep asks again");
      }
      continue;
    }
    // Recorded after GitHub accepted: a process dying in between asks once more, which the guid makes harmless.
    await recordRedelivery(pool, asked);
    deps.onAsked?.();
    done.push(a.id);
  }
  if (done.length) log.info({ deliveryIds: ask.filter((a) => done.includes(a.id)).map((a) => a.guid) }, `asked GitHub to redeliver ${done.length} failed webhook deliveries`);
  const newest = latest(attempts);
  if (!failed && newest) await moveSweepMark(pool, newest);
  return { outcome: failed ? "failed" : "swept", asked: done, refused };
}

const latest = (attempts: HookDelivery[]) => attempts.reduce<Date | undefined>((max, a) => (!max || a.deliveredAt > max ? a.deliveredAt : max), undefined);
