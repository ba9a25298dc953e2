import { mkdtemp, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { RunIdentity, RunTokens } from "../credentials/run-tokens.js";
import type { Checkout, Engine, EngineTools, EngineUnit, Prepared } from "../engines/engine.js";
import type { EngineRegistry } from "../engines/registry.js";
import type { ApplyOutcome, PlanOutcome, StepFailure } from "../engines/terraform.js";
import { parsePlanChanges, type PlanChanges } from "../plans/changes.js";
import { changeFingerprint } from "../plans/fingerprint.js";
import { createMasker, maskDeep, type Masker } from "../plans/mask.js";
import { seal } from "../plans/seal.js";
import { resolveInside } from "../projects/safe-dir.js";
import { projectWorkspace } from "../sandbox/project-workspace.js";
import { passableValues, type EnvPolicy } from "./project-env.js";
import { identityFor, sandboxInputs, type Phase, type RunProject, type RunReason, type RunStep, type SandboxInputs } from "./sandbox-inputs.js";

export interface RunServiceDeps extends EnvPolicy {
  engines: EngineRegistry;
  tools: EngineTools;
  /** The operator's PLANGATE_MASK_PATTERNS. */
  maskPatterns: RegExp[];
  /** Seals plan files for storage; absent for the local CLI, which stores none. */
  encryptionKey?: Buffer;
  /** plangate's OIDC issuer: mints the identity of projects with `credentials`; absent for the local CLI, which issues none. */
  tokens?: RunTokens;
}

/**
 * Where a run's checkout comes from: a plan group's shared read-only export
 * (the run gets private writable copies of its folders in `workDir`), or a
 * private checkout of its own (applies, the merge queue, drift, local).
 * Either was scrubbed of terraform tooling when it was made.
 */
export type RunCheckout = { shared: string; workDir: string } | { checkoutDir: string };

export interface RunRequest {
  checkout: RunCheckout;
  project: RunProject;
  phase: Phase;
  reason: RunReason;
  /** When the run's time is up (PLANGATE_JOB_TIMEOUT from its start); a step may be given its own. */
  deadline: number;
  /** Who and what the run is for (the claims of its tokens): asked only when its project has `credentials`. */
  identity?: () => Promise<RunIdentity>;
}

export type Opened = { ok: true; run: ProjectRun } | { ok: false; cause: "env" | "dir"; message: string };

/** A plan captured by a run: checked, masked and sealed on demand (a large plan's parse is paid only by who needs it). */
export interface CapturedPlan {
  ok: true;
  /** The reviewed change's identity (plans/fingerprint.ts). */
  fingerprint(): string;
  /** The resource changes, masked. */
  changes(): PlanChanges;
  /** The plan file, sealed with PLANGATE_ENCRYPTION_KEY. */
  sealed(): Buffer;
  /** The engine's output, masked. */
  output(): string;
}

export type UnitPlan = CapturedPlan | StepFailure;

const once = <T>(make: () => T): (() => T) => {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
};

/**
 * The one sandboxed run of a project, for every phase and reason: pull
 * request plans, merge-queue plans, an apply's fresh plans and its applies,
 * drift checks and `plangate plan DIR`. Opening decides what enters the
 * sandbox (sandboxInputs) and lays out the checkout; the run then prepares
 * the engine's units and plans or applies them, returning what it captured
 * masked (every value the project's env could pass in, and the operator's
 * patterns).
 */
export class ProjectRuns {
  constructor(private readonly deps: RunServiceDeps) {}

  engine(name: string): Engine {
    return this.deps.engines.named(name);
  }

  async open(req: RunRequest): Promise<Opened> {
    const engine = this.engine(req.project.engine);
    const root = "shared" in req.checkout ? req.checkout.shared : req.checkout.checkoutDir;
    try {
      await resolveInside(root, req.project.dir);
    } catch (error) {
      return { ok: false, cause: "dir", message: (error as Error).message };
    }
    const decided = sandboxInputs(this.deps, engine, req.project, req.phase, req.reason);
    if (!decided.ok) return { ok: false, cause: "env", message: decided.message };
    let checkout: Checkout;
    let projectDir = req.project.dir;
    try {
      if ("shared" in req.checkout) {
        const laid = await projectWorkspace(this.deps.tools.sandbox.kind, req.checkout.shared, req.checkout.workDir, decided.inputs.writable);
        checkout = { checkoutDir: laid.checkoutDir, tree: laid.tree };
        projectDir = laid.ownDirs[0]!;
      } else {
        checkout = { checkoutDir: req.checkout.checkoutDir };
      }
    } catch (error) {
      return { ok: false, cause: "dir", message: (error as Error).message };
    }
    return { ok: true, run: new ProjectRun(this.deps, engine, decided.inputs, checkout, projectDir, req, passableValues(this.deps, req.project.env)) };
  }

  /**
   * Plans opened runs' units in one sandbox entry, each kept apart from the
   * others there (Engine.planTogether), when their engine can and what
   * enters their sandbox is the same: one engine, the plan phase, the same
   * env, and no identity to mint (a run's tokens are its own). `root` holds
   * every run's workspace. Each run comes back planned, "alone" (left out,
   * or not planned cleanly there: plan it alone) or "unreached" (`stop`, `halve`, a
   * cap or the deadline ended the batch before it began).
   */
  async planTogether(root: string, parts: TogetherPart[], stop?: AbortSignal, halve?: AbortSignal): Promise<TogetherOutcome[]> {
    const first = parts[0]?.run;
    const sameInputs = (run: ProjectRun) => run.engine === first?.engine && run.inputs.phase === "plan" && sameEnv(run.inputs.env, first.inputs.env) && !run.needsIdentity("plan");
    const together = parts.filter((p) => sameInputs(p.run));
    if (!first?.engine.planTogether || together.length < 2) return parts.map(() => "alone");
    const { planned, reached } = await first.engine.planTogether(this.deps.tools, root, together.map((p) => p.run.unitJob(p.unit, p.step, p.run.inputs.env)), stop, halve);
    return parts.map((p) => {
      const i = together.indexOf(p);
      if (i < 0) return "alone";
      if (i >= reached) return "unreached";
      const outcome = planned[i];
      return outcome?.ok ? (p.run.captured(outcome) as CapturedPlan) : "alone";
    });
  }
}

/** A run of a batch: planned in the shared entry, to plan alone, or not reached (the batch ended before it began). */
export type TogetherOutcome = CapturedPlan | "alone" | "unreached";

/** One opened run's unit to plan in a batch (ProjectRuns.planTogether). */
export interface TogetherPart {
  run: ProjectRun;
  unit: EngineUnit;
  step: UnitStep;
}

const sameEnv = (a: Record<string, string>, b: Record<string, string>) => {
  const entries = (env: Record<string, string>) => JSON.stringify(Object.entries(env).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return entries(a) === entries(b);
};

/** One opened run: its engine, what enters its sandbox, its checkout. */
export class ProjectRun {
  private masker: Masker;
  /** Hides what the project's env could pass in, every token issued to the run, and the operator's patterns. */
  readonly mask: Masker = (text) => this.masker(text);

  constructor(
    private readonly deps: RunServiceDeps,
    readonly engine: Engine,
    readonly inputs: SandboxInputs,
    readonly checkout: Checkout,
    /** The project's folder as the engine sees it (relative to the checkout). */
    readonly projectDir: string,
    private readonly req: RunRequest,
    /** The values the run's output must never show. */
    private readonly secrets: string[],
  ) {
    this.masker = createMasker(secrets, deps.maskPatterns);
  }

  /** The units to plan or apply, in dependency order (a program is synthesized here); what it says comes back masked. */
  async prepare(): Promise<Prepared> {
    const prepared = await this.engine.prepare(this.deps.tools, { ...this.checkout, projectDir: this.projectDir, env: this.inputs.env, deadline: this.req.deadline, only: this.req.project.stacks });
    return prepared.ok ? { ...prepared, output: this.mask(prepared.output) } : { ...prepared, message: this.mask(prepared.message), output: this.mask(prepared.output) };
  }

  /** Whether a step of this run is given an identity (tokens minted for it alone). */
  needsIdentity(step: RunStep): boolean {
    return !!identityFor(this.req.project, step, this.req.reason, !!this.req.identity) && !!this.deps.tokens;
  }

  /** @internal The engine's job of one unit's step (ProjectRuns.planTogether). */
  unitJob(unit: EngineUnit, step: UnitStep, env: Record<string, string>) {
    return { ...this.checkout, unitDir: unit.dir, workspace: this.req.project.workspace, env, deadline: this.deadlineOf(step), outDir: step.outDir, started: step.started };
  }

  private deadlineOf(step: UnitStep): number {
    return step.deadline ?? this.req.deadline;
  }

  /** Plans one unit and captures the plan (in the apply phase too: a plan that is then applied, as an apply would see it). */
  async plan(unit: EngineUnit, step: UnitStep): Promise<UnitPlan> {
    return this.withIdentity("plan", step, async (env) => this.captured(await this.engine.plan(this.deps.tools, this.unitJob(unit, step, env))));
  }

  /** Applies the plan this checkout's last plan of the unit left, or `stored` (a reviewed plan, unsealed). Only in the apply phase. */
  async apply(unit: EngineUnit, step: UnitStep, stored?: Buffer): Promise<ApplyOutcome> {
    if (this.inputs.phase !== "apply") throw new Error("a run opened to plan does not apply");
    const applied = await this.withIdentity("apply", step, (env) => this.engine.apply(this.deps.tools, this.unitJob(unit, step, env), stored));
    return applied.ok ? { ok: true, output: this.mask(applied.output) } : this.maskedFailure(applied);
  }

  /**
   * Runs a step with the identity identityFor gives it: tokens minted just
   * before, written to a folder of the run's workspace that only the
   * sandbox's user can read, removed as soon as the step ends. Every token
   * is masked in whatever the run outputs from then on.
   */
  private async withIdentity<T>(step: RunStep, unitStep: UnitStep, act: (env: Record<string, string>) => Promise<T>): Promise<T> {
    const wanted = identityFor(this.req.project, step, this.req.reason, !!this.req.identity);
    if (!wanted || !this.deps.tokens) return act(this.inputs.env);
    // A folder made new here (never one the checkout brings): its files are given to the sandbox's user with the workspace.
    const dir = await mkdtemp(path.join(this.checkout.tree?.workDir ?? this.checkout.checkoutDir, ".plangate-credentials-"));
    try {
      const project = { name: this.req.project.name, workspace: this.req.project.workspace };
      const issued = await this.deps.tokens.issue({ ...wanted, project, identity: await this.req.identity!(), deadline: this.deadlineOf(unitStep), dir });
      this.secrets.push(...issued.tokens);
      this.masker = createMasker(this.secrets, this.deps.maskPatterns);
      for (const file of issued.files) await writeFile(file.path, file.content, { mode: 0o400, flag: "wx" });
      return await act({ ...this.inputs.env, ...issued.env });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private maskedFailure(failure: StepFailure): StepFailure {
    return { ...failure, output: this.mask(failure.output), problems: failure.problems.map(this.mask) };
  }

  /** @internal A plan as the run captures it: masked and sealed on demand (ProjectRuns.planTogether). */
  captured(outcome: PlanOutcome): UnitPlan {
    if (!outcome.ok) return this.maskedFailure(outcome);
    const { planJson, planFile } = outcome;
    const key = this.deps.encryptionKey;
    return {
      ok: true,
      fingerprint: once(() => changeFingerprint(planJson, planFile)),
      changes: once(() => maskDeep(parsePlanChanges(planJson), this.mask)),
      sealed: once(() => {
        if (!key) throw new Error("plans are sealed only where PLANGATE_ENCRYPTION_KEY is set");
        return seal(key, planFile);
      }),
      output: maskedLater(outcome.output, this.mask),
    };
  }
}

/**
 * The masking of an output, for later. Made out here so that it holds the
 * output alone, not the plan's parsed JSON (megabytes of heap while a
 * comment is rendered and the output waits to be stored).
 */
const maskedLater = (output: string, mask: Masker) => once(() => mask(output));

/** One step of a run: where its artefacts go, its own deadline if not the run's, and who to tell when it starts. */
export interface UnitStep {
  outDir: string;
  deadline?: number;
  started?: () => void;
}

/** A fresh plan of a unit compared with the approved one's fingerprint ("plan afresh and compare"). */
export type Compared = { fresh: CapturedPlan; matches: boolean } | { fresh: StepFailure; matches: false };

/** Plans `unit` afresh and says whether it is the change that was approved. */
export async function planAfresh(run: ProjectRun, unit: EngineUnit, step: UnitStep, approvedFingerprint: string): Promise<Compared> {
  const fresh = await run.plan(unit, step);
  return fresh.ok ? { fresh, matches: fresh.fingerprint() === approvedFingerprint } : { fresh, matches: false };
}

/** The unit of a prepared project that a run (a stack's, or the project's own) stands for. */
export function unitOf(engine: Engine, units: EngineUnit[], stack: string | undefined): EngineUnit | undefined {
  return engine.unitsAreRuns ? units.find((u) => u.name === stack) : units[0];
}

export const outDirOf = (root: string, unit: EngineUnit) => (unit.name ? path.join(root, unit.name) : root);
