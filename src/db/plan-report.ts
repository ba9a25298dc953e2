import type { PlanReport } from "../render/plan-report.js";
import { groupChanges } from "./plans.js";
import type { Queryable } from "./pool.js";
import { getGroup, leafRuns, type Run } from "./runs.js";

/** A plan group as the renderers see it, from what Postgres holds; with its runs in the same order. */
export async function loadPlanReport(db: Queryable, groupId: number, runUrl?: string): Promise<{ report: PlanReport; runs: Run[] }> {
  const group = await getGroup(db, groupId);
  const runs = await leafRuns(db, groupId);
  const changes = await groupChanges(db, groupId);
  return {
    runs,
    report: {
      repo: group.repo,
      sha: group.sha,
      runUrl,
      applyModes: runs.map((run) => run.rules?.apply ?? "on_merge"),
      ruleChanges: group.rule_changes,
      projects: runs.map((run) => ({
        name: run.project,
        workspace: run.workspace,
        status: run.status === "succeeded" ? "succeeded" : "failed",
        changes: changes.get(run.id),
        failure: run.error ? { ...run.error, output: run.output ?? undefined } : undefined,
      })),
    },
  };
}
