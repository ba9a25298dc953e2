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

export async function loadGroupResults(db: Queryable, groupId: number): Promise<GroupResults> {
  return { group: await getGroup(db, groupId), runs: await leafRuns(db, groupId), changes: await groupChanges(db, groupId) };
}
