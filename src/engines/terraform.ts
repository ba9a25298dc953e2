import { constants } from "node:os";
import path from "node:path";
import type { ExecResult } from "./exec.js";
import type { TreeMounts } from "./project-workspace.js";
import { ProviderCacheLease } from "./provider-cache.js";
import { parsePrJson, readInside, readTextInside, WorkspaceFileError } from "./safe-read.js";
import type { Sandbox } from "./sandbox.js";
import type { TerraformHome } from "./terraform-home.js";

export interface TerraformJob {
  sandbox: Sandbox;
  /** Absolute path of terraform or tofu. */
  bin: string;
  home: TerraformHome;
  /** The checkout (the sandbox's writable workspace, unless `tree` says otherwise). */
  checkoutDir: string;
  /** A shared read-only export laid at checkoutDir, with the job's own folders writable over it. */
  tree?: TreeMounts;
  /** The project's directory, relative to the checkout. */
  projectDir: string;
  workspace: string;
  /** The project's allowlisted variables. */
  env: Record<string, string>;
  timeoutMs: number;
  /** Where plan artefacts go, outside the checkout. */
  outDir: string;
  /** Told as each sandboxed command is about to start (the job's overhead ends at the first). */
  started?: () => void;
}

export type PlanOutcome =
  | { ok: true; output: string; planFile: Buffer; planJson: unknown }
  | StepFailure;

/** A failed step: which one, its output, and what the sandbox saw (caps, refused connections). */
export interface StepFailure {
  ok: false;
  stage: string;
  output: string;
  timedOut: boolean;
  problems: string[];
}

const STATE_LOCK_TIMEOUT = "-lock-timeout=120s";

export type ApplyOutcome = { ok: true; output: string } | StepFailure;

/** The one-line reason of a failed step, e.g. "terraform plan failed: exceeded PLANGATE_SANDBOX_PIDS (512)". */
export function failureMessage(failure: Pick<StepFailure, "stage" | "timedOut" | "problems">, timeoutText = "timed out", program = "terraform"): string {
  const head = failure.timedOut ? timeoutText : `${program} ${failure.stage} failed`;
  return failure.problems.length ? `${head}: ${failure.problems.join("; ")}` : head;
}

/**
 * A program killed by a signal from outside (the OOM killer, an operator, a
 * dying host) says which, rather than only "failed". bwrap reports
 * its child's death by signal N as exit 128 + N.
 */
function namingSignal(result: ExecResult): ExecResult {
  if (result.timedOut || result.exitCode === 0 || result.problems.length) return result; // a cap it exceeded says more
  const number = result.exitCode !== null && result.exitCode > 128 ? result.exitCode - 128 : undefined;
  const name = result.signal ?? Object.entries(constants.signals).find(([, n]) => n === number)?.[0];
  return name ? { ...result, problems: [...result.problems, `killed by signal ${name}`] } : result;
}

/** The sandboxed terraform runner of one job: every command shares the job's deadline. */
function runner(job: TerraformJob, cache: ProviderCacheLease) {
  const deadline = Date.now() + job.timeoutMs;
  const chdir = `-chdir=${job.projectDir}`;
  const env = {
    ...job.env,
    TF_IN_AUTOMATION: "1",
    TF_INPUT: "0",
    TF_CLI_CONFIG_FILE: job.home.cliConfigFile,
    TF_PLUGIN_CACHE_DIR: cache.path,
  };
  return (args: string[], stdoutFile?: string) =>
    job.sandbox.run({
      command: [job.bin, chdir, ...args],
      workDir: workDirOf(job),
      cwd: job.checkoutDir,
      network: true, // providers and state backends need it (DESIGN.md section 3)
      env,
      readOnly: [path.dirname(job.bin), ...job.home.readOnly],
      // The tree first; the provider cache is writable only while init populates a cache of this job's own.
      binds: [...(job.tree?.binds ?? []), ...cache.binds()],
      timeoutMs: Math.max(1, deadline - Date.now()),
      stdoutFile,
      started: job.started,
    }).then(namingSignal);
}

/** The sandbox's writable workspace of a job: its checkout, or the private folder a shared tree is laid in. */
export const workDirOf = (job: Pick<TerraformJob, "checkoutDir" | "tree">) => job.tree?.workDir ?? job.checkoutDir;

/** The plan file of a project directory, inside the workspace (the sandbox can write nowhere else). */
export const planFilePath = (job: Pick<TerraformJob, "checkoutDir" | "projectDir" | "tree">) =>
  path.join(workDirOf(job), `.plangate-tfplan-${job.projectDir.replace(/[^A-Za-z0-9]+/g, "_")}`);

function initSteps(job: TerraformJob): [string, string[]][] {
  return [
    ["init", ["init", "-input=false", "-no-color"]],
    ...(job.workspace !== "default" ? [["workspace", ["workspace", "select", "-or-create=true", "-no-color", job.workspace]] as [string, string[]]] : []),
  ];
}

/** Runs init, plan -out and show -json for one project, in the sandbox, with one overall deadline. */
export async function terraformPlan(job: TerraformJob): Promise<PlanOutcome> {
  const cache = await ProviderCacheLease.forInit(job);
  const run = runner(job, cache);
  const planPath = planFilePath(job);
  const jsonPath = path.join(job.outDir, "plan.json");
  const outputs: string[] = [];
  const steps: [string, string[]][] = [
    ...initSteps(job),
    ["plan", ["plan", "-input=false", "-no-color", "-lock=true", STATE_LOCK_TIMEOUT, `-out=${planPath}`]],
  ];
  for (const [stage, args] of steps) {
    const result = stage === "init" ? await cache.init(() => run(args)) : await run(args);
    outputs.push(result.output);
    if (result.exitCode !== 0 || result.timedOut) return { ok: false, stage, output: result.output, timedOut: result.timedOut, problems: result.problems };
  }
  const show = await run(["show", "-json", "-no-color", planPath], jsonPath);
  if (show.exitCode !== 0 || show.timedOut) return { ok: false, stage: "show", output: show.output, timedOut: show.timedOut, problems: show.problems };
  try {
    // The plan step ran PR-chosen provider code in the workspace: the plan file may have been swapped for a link.
    const planFile = await readInside(workDirOf(job), planPath, { shown: "the plan file" });
    const planJson = parsePrJson(await readTextInside(job.outDir, jsonPath), "terraform show -json output");
    return { ok: true, output: outputs.join("\n"), planFile, planJson };
  } catch (error) {
    if (!(error instanceof WorkspaceFileError)) throw error;
    return { ok: false, stage: "show", output: "", timedOut: false, problems: [error.message] };
  }
}

/**
 * Applies a saved plan file (already in the checkout at planFilePath) with
 * terraform's state lock held; `initialise` runs init first (a fresh checkout).
 */
export async function terraformApply(job: TerraformJob, initialise: boolean): Promise<ApplyOutcome> {
  const cache = initialise ? await ProviderCacheLease.forInit(job) : await ProviderCacheLease.afterInit(job);
  const run = runner(job, cache);
  const outputs: string[] = [];
  const steps: [string, string[]][] = [
    ...(initialise ? initSteps(job) : []),
    ["apply", ["apply", "-input=false", "-no-color", "-lock=true", STATE_LOCK_TIMEOUT, planFilePath(job)]],
  ];
  for (const [stage, args] of steps) {
    const result = stage === "init" ? await cache.init(() => run(args)) : await run(args);
    outputs.push(result.output);
    if (result.exitCode !== 0 || result.timedOut) return { ok: false, stage, output: result.output, timedOut: result.timedOut, problems: result.problems };
  }
  return { ok: true, output: outputs.join("\n") };
}
