import { isOwnSetting, type EnvAllowlist } from "../settings/env-allow.js";

export type Purpose = "plan" | "apply";

export type ProjectEnv = { ok: true; env: Record<string, string> } | { ok: false; message: string };

export interface EnvPolicy {
  envAllow: EnvAllowlist;
  applyEnvAllow: EnvAllowlist;
}

/**
 * The worker's values of the variables a project's (effective) `env` names,
 * for a plan or an apply. Plans get names PLANGATE_ENV_ALLOW allows; applies
 * also those of PLANGATE_APPLY_ENV_ALLOW. A name neither allows fails the
 * project, naming the name and the setting; plangate's own settings never pass.
 */
export function projectEnv(policy: EnvPolicy, names: string[], purpose: Purpose, source: NodeJS.ProcessEnv = process.env): ProjectEnv {
  const env: Record<string, string> = {};
  for (const name of names) {
    if (isOwnSetting(name)) return { ok: false, message: `env ${name} is one of plangate's own settings, which are never passed to a project` };
    const forPlans = policy.envAllow.allows(name);
    const forApplies = forPlans || policy.applyEnvAllow.allows(name);
    if (!forApplies) return { ok: false, message: `env ${name} is not allowed: the operator must add it to PLANGATE_ENV_ALLOW (or to PLANGATE_APPLY_ENV_ALLOW for applies only)` };
    if (purpose === "plan" && !forPlans) continue; // an apply-only credential: plans never see it
    if (source[name] !== undefined) env[name] = source[name]!;
  }
  return { ok: true, env };
}

/** Every value a project's runs could receive (plans and applies): what its masker hides. */
export function passableValues(policy: EnvPolicy, names: string[], source: NodeJS.ProcessEnv = process.env): string[] {
  const passable = names.filter((n) => policy.envAllow.allows(n) || policy.applyEnvAllow.allows(n));
  return passable.flatMap((n) => (source[n] !== undefined ? [source[n]!] : []));
}
