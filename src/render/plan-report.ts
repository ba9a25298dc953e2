import type { ChangeAction, ChangeCounts, PlanChanges } from "../plans/changes.js";
import type { PolicyViolation } from "../plans/policy.js";
import { provisionerCount } from "./apply-time-text.js";
import { policyResultsView, policyViolationText } from "./policy-text.js";
import { remembered } from "./remembered.js";
import type { JudgedOutcome, RunPolicy } from "../plans/policy-judgement.js";
import type { ProjectRules } from "../settings/rules.js";
import type { Templates } from "./templates.js";

/** One project's outcome, as the renderers see it. */
export interface ProjectResult {
  name: string;
  workspace: string;
  status: "succeeded" | "failed";
  changes?: PlanChanges;
  /** `tool`: the program that failed (its engine's), named in the failure's heading. */
  failure?: { tool?: string; stage: string; message: string; output?: string; timedOut?: boolean; violations?: PolicyViolation[] };
  /** What the CEL policies found in its plan, and what owners overrode. */
  policy?: JudgedOutcome[];
  /** The earlier commit whose plan a push kept (nothing of the project changed since). */
  reusedFrom?: string;
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

/** The glyphs shown before an address, per action, in the order actions are listed (destroys first). */
export const ACTION_SYMBOLS: Record<ChangeAction, string> = {
  delete: "🔴 -",
  replace: "🟠 ±",
  update: "🟡 ~",
  create: "🟢 +",
  move: "🔵 →",
  import: "🔵 ←",
  forget: "⚪ ⊘",
  read: "⚪ ≡",
};

/** Every action in listing order. */
export const ACTION_ORDER = Object.keys(ACTION_SYMBOLS) as ChangeAction[];

/** What each action is called, and `drift` (changed outside terraform): templates/action-label.hbs. */
export type ActionLabels = Record<ChangeAction | "drift", string>;

export function actionLabels(t: Templates): ActionLabels {
  const label = (action: ChangeAction | "drift") => t.render("action-label", { action }).trim();
  return Object.fromEntries([...ACTION_ORDER, "drift" as const].map((a) => [a, label(a)])) as ActionLabels;
}

const ZERO: ChangeCounts = { add: 0, change: 0, destroy: 0, replace: 0 };

/** A project's result cell (planned, no changes, failed, policy): templates/plan-result.hbs. */
export function resultText(t: Templates, project: ProjectResult, rendered?: Map<string, string>): string {
  const c = project.changes?.counts ?? ZERO;
  const noChanges = c.add + c.change + c.destroy + c.replace === 0 && !project.changes?.resources.length && !project.changes?.outputs?.length;
  const data = { status: project.status, stage: project.failure?.stage, noChanges, reusedFrom: project.reusedFrom?.slice(0, 7) };
  if (!rendered) return t.render("plan-result", data).trim();
  // A report of hundreds of projects has a handful of different cells.
  const key = JSON.stringify([data.status, data.stage, data.noChanges, data.reusedFrom]);
  return remembered(rendered, key, () => t.render("plan-result", data).trim());
}

/** A failure whose policy violations carry their sentence as `message` (what the templates show). */
function withViolationTexts(t: Templates, failure: NonNullable<ProjectResult["failure"]>): NonNullable<ProjectResult["failure"]> {
  if (!failure.violations?.length) return failure;
  return { ...failure, violations: failure.violations.map((v) => ({ ...v, message: policyViolationText(t, v) })) };
}

/** The data every plan template shares: projects with counts, totals, what failed. */
export function reportView(t: Templates, report: PlanReport) {
  const results = new Map<string, string>();
  const projects = report.projects.map((p) => {
    const policies = policyResultsView(p.policy);
    return { ...p, ...(p.failure ? { failure: withViolationTexts(t, p.failure) } : {}), counts: p.changes?.counts ?? ZERO, resultText: resultText(t, p, results), policies, blockingPolicies: policies.some((o) => o.blocking) };
  });
  const totals = projects.reduce(
    (t, p) => ({ add: t.add + p.counts.add, change: t.change + p.counts.change, destroy: t.destroy + p.counts.destroy, replace: t.replace + p.counts.replace }),
    { ...ZERO },
  );
  const failed = projects.filter((p) => p.status === "failed");
  return {
    projects,
    /** The summary table's rows: every project, unless tableCuts cut them to fit a comment. */
    tableRows: projects as typeof projects,
    /** Projects the table leaves out (listed on the run page). */
    tableMore: 0,
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
    labels: actionLabels(t),
  };
}

/**
 * What a report is made from: a run group's outcome as stored (db/plan-report.ts's
 * GroupResults has this shape), only the fields the renderers read, so that
 * rendering never depends on the database's modules.
 */
export interface GroupOutcomeView {
  group: { repo: string; sha: string; rule_changes: string[] };
  runs: {
    id: number;
    project: string;
    workspace: string;
    status: string;
    output: string | null;
    error: Omit<NonNullable<ProjectResult["failure"]>, "output"> | null;
    rules: Pick<ProjectRules, "apply"> | null;
    policy: Pick<RunPolicy, "outcomes"> | null;
    reused_from: string | null;
  }[];
  changes: ReadonlyMap<number, PlanChanges>;
}

/** A plan group as the renderers see it, from what Postgres holds; projects in the order of `results.runs`. */
export function planReportOf({ group, runs, changes }: GroupOutcomeView, runUrl?: string): PlanReport {
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
      ...(run.policy?.outcomes.length ? { policy: run.policy.outcomes } : {}),
      ...(run.reused_from ? { reusedFrom: run.reused_from } : {}),
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

export type ReportView = ReturnType<typeof reportView>;

/** Which projects a cut table keeps first: failures, then destroys and replaces, then other changes, then the rest. */
function tableRank(p: ReportView["projects"][number]): number {
  if (p.status === "failed") return 0;
  if (p.counts.destroy + p.counts.replace > 0) return 1;
  if (p.counts.add + p.counts.change > 0) return 2;
  return 3;
}

/** The projects' indices in the order a cut table keeps them. */
export function tableRanking(view: ReportView): number[] {
  return view.projects
    .map((p, i) => ({ rank: tableRank(p), i }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map(({ i }) => i);
}

/**
 * The view with its summary table cut to the `rows` projects that matter most
 * (in plan order), the others counted, for any `rows`: a PR of thousands of
 * projects would otherwise need a table longer than a comment may be, and the
 * table is fitted by halving (the projects are ranked once).
 */
export function tableCuts(view: ReportView): (rows: number) => ReportView {
  let ranked: number[] | undefined;
  return (rows) => {
    if (rows >= view.projects.length) return view;
    ranked ??= tableRanking(view);
    const kept = new Set(ranked.slice(0, rows));
    const tableRows = view.projects.filter((_, i) => kept.has(i));
    return { ...view, tableRows, tableMore: view.projects.length - tableRows.length };
  };
}
