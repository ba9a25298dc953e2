import type { PlanChanges } from "../plans/changes.js";
import { groupChanges } from "./plans.js";
import type { Queryable } from "./pool.js";
import { getGroup, type RunGroup } from "./run-groups.js";
import { leafRuns, type Run } from "./runs.js";

/** What Postgres holds of one run group's outcome: the group, its project runs and their stored changes. */
export interface GroupResults {
  group: RunGroup;
  runs: Run[];
  changes: Map<number, PlanChanges>;
}

/** `known`: changes this process has just stored (a large plan's are not read back from Postgres). */
export async function loadGroupResults(db: Queryable, groupId: number, known: ReadonlyMap<number, PlanChanges> = new Map()): Promise<GroupResults> {
  const changes = await groupChanges(db, groupId, [...known.keys()]);
  for (const [runId, stored] of known) changes.set(runId, stored);
  return { group: await getGroup(db, groupId), runs: await leafRuns(db, groupId), changes };
}
