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

/**
 * `known`: changes this process has just stored (a large plan's are not read
 * back from Postgres). `forComment`: the group is at hand, and only failed
 * runs' output is read (the plan comment shows no other).
 */
export async function loadGroupResults(db: Queryable, groupId: number, known: ReadonlyMap<number, PlanChanges> = new Map(), forComment?: { group: RunGroup }): Promise<GroupResults> {
  const [changes, group, runs] = await Promise.all([
    groupChanges(db, groupId, [...known.keys()]),
    forComment?.group ?? getGroup(db, groupId),
    leafRuns(db, groupId, forComment ? "failed" : "all"),
  ]);
  for (const [runId, stored] of known) changes.set(runId, stored);
  return { group, runs, changes };
}
