import path from "node:path";
import { cdktfSynth } from "../../engines/cdktf.js";
import { writeInside } from "../../sandbox/safe-read.js";
import { planFilePath, terraformApply, terraformPlan, type ApplyOutcome, type PlanOutcome, type TerraformJob } from "../../engines/terraform.js";
import { plansOfRuns, type StoredPlan } from "../../db/plans.js";
import { headRuns, runsById, type Run } from "../../db/runs.js";
import type { RunGroup } from "../../db/run-groups.js";
import type { BaseRules } from "../../settings/rules.js";
import { rulesOf } from "../base-rules.js";
import { unseal } from "../../plans/seal.js";
import { resolveInside } from "../../projects/safe-dir.js";
import type { WorkerDeps } from "../deps.js";
import { withTerraformJob } from "../terraform-job.js";
import { projectEnv } from "../project-env.js";
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
export async function reviewedUnits(deps: WorkerDeps, group: RunGroup, mode: "merge" | "command", base: BaseRules, select?: (run: Run) => boolean): Promise<Unit[]> {
  const leaves = await headRuns(deps.pool, group);
  const plans = await plansOfRuns(deps.pool, leaves.map((r) => r.id));
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

/** A checkout of one commit, with the terraform directory of each unit (cdktf programs synthesized once). */
export class Workspace {
  private readonly dirs = new Map<number, string>();
  private readonly envs = new Map<number, Record<string, string>>();
  constructor(
    private readonly deps: WorkerDeps,
    readonly checkoutDir: string,
    private readonly outDir: string,
  ) {}

  /** Resolves every unit's directory and environment; returns an error message for the first that cannot be prepared. */
  async prepare(units: Unit[]): Promise<string | undefined> {
    const programs = new Map<string, Unit[]>();
    for (const unit of units) {
      const env = projectEnv(this.deps, unit.rules.env, "apply");
      if (!env.ok) return `${unit.run.project}: ${env.message}`;
      this.envs.set(unit.run.id, env.env);
      try {
        await resolveInside(this.checkoutDir, unit.run.dir);
      } catch (error) {
        return (error as Error).message;
      }
      if (unit.run.engine !== "cdktf") this.dirs.set(unit.run.id, unit.run.dir);
      else programs.set(unit.run.dir, [...(programs.get(unit.run.dir) ?? []), unit]);
    }
    for (const [dir, stackUnits] of programs) {
      const synth = await cdktfSynth({
        sandbox: this.deps.sandbox,
        checkoutDir: this.checkoutDir,
        projectDir: dir,
        env: this.envs.get(stackUnits[0]!.run.id)!,
        timeoutMs: this.deps.jobTimeoutMs,
        depsCacheDir: path.join(this.deps.dataDir, "cdktf-deps"),
      });
      if (!synth.ok) return `${synth.message}\n${synth.output}`;
      for (const unit of stackUnits) {
        const stackName = unit.run.project.slice(unit.baseProject.length + 1);
        const stack = synth.stacks.find((s) => s.name === stackName);
        if (!stack) return this.deps.templates.render("failure-text", { kind: "stack-gone", stack: stackName, dir }).trim();
        this.dirs.set(unit.run.id, stack.dir);
      }
    }
    return undefined;
  }

  private withJob<T>(unit: Unit, fn: (job: TerraformJob) => Promise<T>): Promise<T> {
    const where = { checkoutDir: this.checkoutDir, projectDir: this.dirs.get(unit.run.id)!, outDir: path.join(this.outDir, String(unit.run.id)) };
    return withTerraformJob(this.deps, unit.run, where, this.envs.get(unit.run.id)!, fn);
  }

  /** Plans the unit afresh at this commit (for apply on merge). */
  planAgain(unit: Unit): Promise<PlanOutcome> {
    return this.withJob(unit, (job) => terraformPlan(job));
  }

  /** Applies the plan file planAgain left in the checkout. */
  applyFresh(unit: Unit): Promise<ApplyOutcome> {
    return this.withJob(unit, (job) => terraformApply(job, false));
  }

  /** Applies a stored plan (the reviewed one for /apply, the queue's for a merge queue commit): decrypt, init, apply. */
  applyStored(unit: Unit): Promise<ApplyOutcome> {
    return this.withJob(unit, async (job) => {
      // No link or hard link a synth planted under the plan file's name is written through.
      await writeInside(this.checkoutDir, planFilePath(job), unseal(this.deps.encryptionKey, (unit.queuePlan ?? unit.plan).plan_file));
      return terraformApply(job, true);
    });
  }
}
