import type { TokenPhase } from "../credentials/cloud-credentials.js";
import type { TokenEvent } from "../credentials/run-tokens.js";
import type { Engine } from "../engines/engine.js";
import type { CredentialsConfig } from "../settings/repo-config.js";
import { projectEnv, type EnvPolicy } from "./project-env.js";

/** What a run does: plan a change, or apply one. */
export type Phase = "plan" | "apply";

/** Why a project runs: the event that asked for it. */
export type RunReason = "pull_request" | "merge" | "command" | "merge_group" | "drift" | "local";

/** The project as a run needs it: the effective rules' env names, never the PR's alone. */
export interface RunProject {
  name: string;
  dir: string;
  engine: string;
  workspace: string;
  /** Only these units (a program's stacks), when the project names some. */
  stacks?: string[];
  /** The env names of its effective rules. */
  env: string[];
  /** Its effective rules' `credentials` (the base branch's only): the short-lived identity its plans and applies get. */
  credentials?: CredentialsConfig;
}

/** Everything that enters the sandbox for one run, decided in one place (sandboxInputs). */
export interface SandboxInputs {
  phase: Phase;
  reason: RunReason;
  /** The worker's variables the run receives: the project's names that PLANGATE_ENV_ALLOW (and, for applies, PLANGATE_APPLY_ENV_ALLOW) allow. */
  env: Record<string, string>;
  /** The folders the run may write, relative to the checkout: the project's, and its engine's (a synth's output). Everything else is read-only. */
  writable: string[];
  /**
   * The network the engine's steps get: through the egress proxy and its
   * allowlist (PLANGATE_EGRESS_ALLOW) for init, plan and apply; none for a
   * synth (the engine asks for it per step).
   */
  egress: "allowlist";
}

export type InputsDecision = { ok: true; inputs: SandboxInputs } | { ok: false; message: string };

/**
 * Decides what enters the sandbox for a run of `project` in `phase`. A
 * merge-queue plan and an apply's fresh plan get the apply phase's env: they
 * plan what is then applied, as an apply would see it.
 */
export function sandboxInputs(policy: EnvPolicy, engine: Pick<Engine, "writableDirs">, project: Pick<RunProject, "dir" | "env">, phase: Phase, reason: RunReason, source: NodeJS.ProcessEnv = process.env): InputsDecision {
  const env = projectEnv(policy, project.env, phase, source);
  if (!env.ok) return env;
  return { ok: true, inputs: { phase, reason, env: env.env, writable: [project.dir, ...engine.writableDirs(project.dir)], egress: "allowlist" } };
}

/** A sandboxed step of a run: a program's synth, a plan, or an apply. */
export type RunStep = "synth" | "plan" | "apply";

/**
 * The identity a step gets (DESIGN.md section 3, "Dynamic credentials"):
 * every plan the plan phase's, whatever the run is for (a PR, a merge
 * queue, an apply's fresh plan, drift); only an apply the apply phase's; a
 * synth none. Nothing at all without `credentials` or without the run's
 * identity (`plangate plan DIR` has none to give).
 */
export function identityFor(project: Pick<RunProject, "credentials">, step: RunStep, reason: RunReason, hasIdentity: boolean): { phase: TokenPhase; event: TokenEvent; credentials: CredentialsConfig } | undefined {
  if (!project.credentials || !hasIdentity || step === "synth" || reason === "local") return undefined;
  return { phase: step, event: reason, credentials: project.credentials };
}
