import type { ChangeAction, ChangeCounts, PlanChanges } from "../plans/changes.js";
import type { PolicyViolation } from "../plans/policy.js";
import type { GroupResults } from "../db/plan-report.js";
import { provisionerCount } from "./apply-time-text.js";

/** One project's outcome, as the renderers see it. */
export interface ProjectResult {
  name: string;
  workspace: string;
  status: "succeeded" | "failed";
  changes?: PlanChanges;
  failure?: { stage: string; message: string; output?: string; timedOut?: boolean; violations?: PolicyViolation[] };
}

export interface PlanReport {
  repo: string;
  sha: string;
  projects: ProjectResult[];
  runUrl?: string;
  /** How the planned projects get applied, for the "what next" line. */
  applyModes?: ("on_merge" | "command" | "both")[];
  /** Rule changes in the PR's .plangate.yml that take effect once merged. */
  ruleChanges?: string[];
}

export const ACTION_LABELS: Record<ChangeAction, { label: string; symbol: string }> = {
  delete: { label: "destroy", symbol: "🔴 -" },
  replace: { label: "replace", symbol: "🟠 ±" },
  update: { label: "update in place", symbol: "🟡 ~" },
  create: { label: "create", symbol: "🟢 +" },
  move: { label: "move", symbol: "🔵 →" },
  import: { label: "import", symbol: "🔵 ←" },
  forget: { label: "forget (removed from state, not destroyed)", symbol: "⚪ ⊘" },
  read: { label: "read (data sources)", symbol: "⚪ ≡" },
};

const ZERO: ChangeCounts = { add: 0, change: 0, destroy: 0, replace: 0 };

export function resultText(project: ProjectResult): string {
  if (project.status === "failed") return project.failure?.stage === "policy" ? "❌ policy" : "❌ failed";
  const c = project.changes?.counts ?? ZERO;
  return c.add + c.change + c.destroy + c.replace === 0 && !project.changes?.resources.length && !project.changes?.outputs?.length ? "✅ no changes" : "✅ planned";
}

/** The data every plan template shares: projects with counts, totals, what failed. */
export function reportView(report: PlanReport) {
  const projects = report.projects.map((p) => ({ ...p, counts: p.changes?.counts ?? ZERO, resultText: resultText(p) }));
  const totals = projects.reduce(
    (t, p) => ({ add: t.add + p.counts.add, change: t.change + p.counts.change, destroy: t.destroy + p.counts.destroy, replace: t.replace + p.counts.replace }),
    { ...ZERO },
  );
  const failed = projects.filter((p) => p.status === "failed");
  return {
    projects,
    totals,
    failed: failed.length > 0,
    failedNames: failed.map((p) => p.name).join(", "),
    destroying: totals.destroy + totals.replace,
    /** Provisioners that run at apply, over every project. */
    provisioners: projects.reduce((n, p) => n + provisionerCount(p.changes?.applyTime ?? []), 0),
    shortSha: report.sha.slice(0, 7),
    runUrl: report.runUrl,
    applyOnMerge: (report.applyModes ?? []).some((m) => m !== "command"),
    applyByCommand: (report.applyModes ?? []).some((m) => m !== "on_merge"),
    ruleChanges: report.ruleChanges ?? [],
  };
}

/** A plan group as the renderers see it, from what Postgres holds; projects in the order of `results.runs`. */
export function planReportOf({ group, runs, changes }: GroupResults, runUrl?: string): PlanReport {
  return {
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
  };
}

/**
 * True when two reports show the same: everything but the changes compared
 * as JSON, each project's changes by identity (changes a job stored and
 * handed on) or else as JSON.
 */
export function sameReport(a: PlanReport, b: PlanReport): boolean {
  const rest = (report: PlanReport) => JSON.stringify({ ...report, projects: report.projects.map(({ changes: _changes, ...project }) => project) });
  if (a.projects.length !== b.projects.length || rest(a) !== rest(b)) return false;
  return a.projects.every(({ changes }, i) => {
    const other = b.projects[i]!.changes;
    return changes === other || JSON.stringify(changes) === JSON.stringify(other);
  });
}
