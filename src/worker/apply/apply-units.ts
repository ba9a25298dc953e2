import path from "node:path";
import type { EngineUnit } from "../../engines/engine.js";
import type { ApplyOutcome } from "../../engines/terraform.js";
import { planAfresh, unitOf, type Compared, type ProjectRun } from "../../run/project-runs.js";
import type { RunReason } from "../../run/sandbox-inputs.js";
import type { RunIdentity } from "../../credentials/run-tokens.js";
import type { StoredPlan } from "../../db/plans.js";
import { loadHeadPlans, type HeadPlans } from "../../db/head-plans.js";
import { runsById, type Run } from "../../db/runs.js";
import type { RunGroup } from "../../db/run-groups.js";
import type { BaseRules } from "../../settings/rules.js";
import { rulesOf } from "../base-rules.js";
import { unseal } from "../../plans/seal.js";
import type { WorkerDeps } from "../deps.js";
import type { ProjectRules } from "../../settings/rules.js";

/** One reviewed plan to apply: its (leaf) plan run and the stored plan. */
export interface Unit {
  run: Run;
  /** The plan the approvals were given on. */
  plan: StoredPlan;
  /** The plan of the same change that a merge queue verified at the commit being applied (applied instead of planning again). */
  queuePlan?: StoredPlan;
  /** The project its `depends_on` is written against (a stack's program). */
  baseProject: string;
  /** Its effective rules now: the base branch's (before the merge), tightened by the PR. */
  rules: ProjectRules;
}

/** Whether two runs stand for the same (project, workspace): a plan run and the apply or queue run made for it. */
export const sameProject = (a: Pick<Run, "project" | "workspace">, b: Pick<Run, "project" | "workspace">) => a.project === b.project && a.workspace === b.workspace;

/**
 * The reviewed plans at the group's commit that `mode` may apply under
 * `base`'s rules (apply mode, depends_on, env), in dependency order; spent
 * plans included (the gate tells them apart).
 */
export async function reviewedUnits(deps: WorkerDeps, group: RunGroup, mode: "merge" | "command", base: BaseRules, select?: (run: Run) => boolean, head?: HeadPlans): Promise<Unit[]> {
  const { runs: leaves, plans } = head ?? (await loadHeadPlans(deps.pool, group));
  const parentIds = leaves.map((r) => r.parent_run_id).filter((id): id is number => id !== null);
  const parents = new Map((await runsById(deps.pool, parentIds)).map((r) => [r.id, r]));
  const modes = mode === "merge" ? ["on_merge", "both"] : ["command", "both"];
  return orderUnits(
    leaves
      .map((run) => ({ run, rules: rulesOf(base, group, run) }))
      .filter(({ run, rules }) => modes.includes(rules.apply) && (!select || select(run)))
      .flatMap(({ run, rules }) => {
        const plan = plans.get(run.id);
        return plan ? [{ run, plan, rules, baseProject: run.parent_run_id ? parents.get(run.parent_run_id)!.project : run.project }] : [];
      }),
  );
}

/** Units ordered so that every project comes after the projects it depends on; stacks keep their synth order. */
export function orderUnits(units: Unit[]): Unit[] {
  const names = new Set(units.map((u) => u.baseProject));
  const ordered: Unit[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (project: string) => {
    if (done.has(project) || visiting.has(project)) return;
    visiting.add(project);
    const deps = units.find((u) => u.baseProject === project)?.rules.depends_on ?? [];
    for (const d of deps) if (names.has(d)) visit(d);
    visiting.delete(project);
    done.add(project);
    ordered.push(...units.filter((u) => u.baseProject === project).sort((a, b) => a.run.id - b.run.id));
  };
  [...names].sort().forEach(visit);
  return ordered;
}

/** A checkout of one commit, opened as a run for each unit (every program prepared, i.e. synthesized, once). */
export class Workspace {
  private readonly runs = new Map<number, ProjectRun>();
  private readonly units = new Map<number, EngineUnit>();
  constructor(
    private readonly deps: WorkerDeps,
    readonly checkoutDir: string,
    private readonly outDir: string,
    /** What the runs are for: a merge's or /apply's apply, or a merge queue's plans. */
    private readonly reason: RunReason,
    /** Each unit's identity, for the tokens of projects with `credentials`. */
    private readonly identity: (unit: Unit) => () => Promise<RunIdentity>,
  ) {}

  /** Opens every unit's run and prepares each project once; returns an error message for the first that cannot be prepared. */
  async prepare(units: Unit[]): Promise<string | undefined> {
    const projects = new Map<string, { run: ProjectRun; units: Unit[] }>();
    for (const unit of units) {
      const project = { name: unit.baseProject, dir: unit.run.dir, engine: unit.run.engine, workspace: unit.run.workspace, env: unit.rules.env, credentials: unit.rules.credentials };
      const opened = await this.deps.runs.open({ checkout: { checkoutDir: this.checkoutDir }, project, phase: "apply", reason: this.reason, deadline: this.deadline(), identity: this.identity(unit) });
      if (!opened.ok) return opened.cause === "env" ? `${unit.run.project}: ${opened.message}` : opened.message;
      this.runs.set(unit.run.id, opened.run);
      const key = `${unit.run.engine}\0${unit.run.dir}`;
      projects.set(key, { run: projects.get(key)?.run ?? opened.run, units: [...(projects.get(key)?.units ?? []), unit] });
    }
    for (const { run, units: projectUnits } of projects.values()) {
      const prepared = await run.prepare();
      if (!prepared.ok) return `${prepared.message}\n${prepared.output}`;
      for (const unit of projectUnits) {
        const stack = run.engine.unitsAreRuns ? unit.run.project.slice(unit.baseProject.length + 1) : undefined;
        const found = unitOf(run.engine, prepared.units, stack);
        if (!found) return this.deps.templates.render("failure-text", { kind: "stack-gone", stack, dir: unit.run.dir }).trim();
        this.units.set(unit.run.id, found);
      }
    }
    return undefined;
  }

  /** Each plan and apply of a unit gets PLANGATE_JOB_TIMEOUT of its own. */
  private deadline(): number {
    return this.deps.sandbox.clock.now() + this.deps.jobTimeoutMs;
  }

  private step(unit: Unit) {
    return { outDir: path.join(this.outDir, String(unit.run.id)), deadline: this.deadline() };
  }

  /** Plans the unit afresh at this commit and compares it with the approved plan. */
  planAfresh(unit: Unit): Promise<Compared> {
    return planAfresh(this.runs.get(unit.run.id)!, this.units.get(unit.run.id)!, this.step(unit), unit.plan.fingerprint);
  }

  /** Applies the plan file planAfresh left in the checkout. */
  applyFresh(unit: Unit): Promise<ApplyOutcome> {
    return this.runs.get(unit.run.id)!.apply(this.units.get(unit.run.id)!, this.step(unit));
  }

  /** Applies a stored plan (the reviewed one for /apply, the queue's for a merge queue commit): decrypt, init, apply. */
  applyStored(unit: Unit): Promise<ApplyOutcome> {
    const stored = unseal(this.deps.encryptionKey, (unit.queuePlan ?? unit.plan).plan_file);
    return this.runs.get(unit.run.id)!.apply(this.units.get(unit.run.id)!, this.step(unit), stored);
  }
}
