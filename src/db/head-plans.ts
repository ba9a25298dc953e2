import { plansOfRuns, type StoredPlan } from "./plans.js";
import type { Queryable } from "./pool.js";
import { headRuns, type Run } from "./runs.js";
import type { RunGroup } from "./run-groups.js";

/** The latest run of each project planned at a PR's head (up to a plan group), with the plans they stored. */
export interface HeadPlans {
  runs: Run[];
  plans: Map<number, StoredPlan>;
}

/** Read once per decision: the approval status and the reviewed units both work from it. */
export async function loadHeadPlans(db: Queryable, group: RunGroup): Promise<HeadPlans> {
  const runs = await headRuns(db, group);
  return { runs, plans: await plansOfRuns(db, runs.map((r) => r.id)) };
}
