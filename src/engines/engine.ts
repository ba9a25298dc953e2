import type { TreeMounts } from "../sandbox/project-workspace.js";
import type { Sandbox } from "../sandbox/sandbox.js";
import type { ApplyOutcome, PlanOutcome, Together } from "./terraform.js";
import type { TerraformHomes } from "./terraform-home.js";

export type { ApplyOutcome, PlanOutcome, StepFailure } from "./terraform.js";

/** What every engine may use, built once by the composition root. */
export interface EngineTools {
  sandbox: Sandbox;
  /** Terraform homes (CLI config, plugin cache) handed out one per running command. */
  homes: TerraformHomes;
  /** The operator's binaries by the setting naming each (PLANGATE_TERRAFORM_BIN, PLANGATE_TOFU_BIN), resolved. */
  binaries: { terraformBin: string; tofuBin: string };
  /** Installed node_modules of programs, one folder per key, reused between runs (cdktf). */
  depsCacheDir: string;
}

/** Where a run's engine works: the checkout as its commands see it. */
export interface Checkout {
  /** The checkout (the sandbox's writable workspace, unless `tree` says otherwise). */
  checkoutDir: string;
  /** A shared read-only export laid at checkoutDir, with the run's own folders writable over it. */
  tree?: TreeMounts;
}

/** One terraform root an engine plans and applies: the project itself, or one of a program's stacks. */
export interface EngineUnit {
  /** The stack's name; absent when the unit is the project itself. */
  name?: string;
  /** Its directory, relative to the checkout. */
  dir: string;
}

export type Prepared =
  | { ok: true; units: EngineUnit[]; output: string }
  | { ok: false; tool: string; stage: string; message: string; output: string; timedOut: boolean };

export interface PrepareJob extends Checkout {
  /** The project's directory, relative to the checkout (links resolved). */
  projectDir: string;
  env: Record<string, string>;
  deadline: number;
  /** Only these units (with those they depend on), when the project names some. */
  only?: string[];
}

export interface UnitJob extends Checkout {
  unitDir: string;
  workspace: string;
  env: Record<string, string>;
  deadline: number;
  /** Where the unit's artefacts go, outside the checkout. */
  outDir: string;
  /** Told as the first sandboxed command is about to start (the job's overhead ends there). */
  started?: () => void;
}

/**
 * An infrastructure engine: the one module that knows a tool. Nothing
 * outside src/engines/ names one; the project's `engine` picks it from the
 * registry (registry.ts).
 */
export interface Engine {
  /** Its name in `.plangate.yml` (`engine:`). */
  readonly name: string;
  /** The tool its plans and applies run, as failure wording names it ("terraform plan failed", "tofu apply failed"). */
  readonly tool: string;
  /** The folders among a commit's files that hold a project of this engine (repository-relative). */
  findProjects(files: string[]): string[];
  /** A project's folder owns every folder below it: none of them is a project of another engine. */
  readonly ownsSubtree: boolean;
  /** Folders the tool itself leaves in a project (working data, generated code), by name: never a project, never copied. */
  readonly toolingDirs: readonly string[];
  /** Folders a run writes besides the project's own (relative to the checkout root). */
  writableDirs(projectDir: string): string[];
  /** Each unit is a run of its own (a program's stacks), rather than the project being its one unit. */
  readonly unitsAreRuns: boolean;
  /** Makes the project's units ready to plan (synth, for a program), listed in dependency order. */
  prepare(tools: EngineTools, job: PrepareJob): Promise<Prepared>;
  /** Plans one unit; the plan file stays in the checkout for apply(…, undefined). */
  plan(tools: EngineTools, job: UnitJob): Promise<PlanOutcome>;
  /**
   * Plans several projects' units in one sandbox entry, each kept apart from
   * the others (terraform.ts, terraformPlanTogether); `root` holds every
   * job's workspace. Undefined for a project means: plan it alone; `stop`
   * ends the batch before its next project, `halve` halfway through those
   * not yet begun. Engines without it plan every unit alone.
   */
  planTogether?(tools: EngineTools, root: string, jobs: UnitJob[], stop?: AbortSignal, halve?: AbortSignal): Promise<Together>;
  /** Applies the plan this checkout's last plan left (`stored` absent), or `stored` after initialising afresh. */
  apply(tools: EngineTools, job: UnitJob, stored?: Buffer): Promise<ApplyOutcome>;
}

/** A project that is its own one unit, as a terraform root is. */
export const projectAsUnit = (job: PrepareJob): Prepared => ({ ok: true, units: [{ dir: job.projectDir }], output: "" });
