import { unfinishedRunCount } from "../../db/runs.js";
import type { WorkerDeps } from "../deps.js";

/** How often a process looks whether a plan group its export serves is done, and for how long at most. */
const LOOK_EVERY_MS = 5000;
const LOOK_FOR_MS = 30 * 60_000;

/**
 * Removes this process's export `key` once the plan group has no run left
 * to plan: at once if it is done, else once this process sees it done (its
 * other runs may be planned by another worker process).
 */
export function discardWhenGroupDone(deps: WorkerDeps, key: string, groupId: number): Promise<void> {
  return deps.exports.discardWhen(key, async () => (await unfinishedRunCount(deps.pool, groupId)) === 0, {
    everyMs: LOOK_EVERY_MS,
    forMs: LOOK_FOR_MS,
    warn: (error) => deps.log.warn({ err: error, key }, "could not look at a plan group's export"),
  });
}
