import picomatch from "picomatch";
import type { PolicyConfig } from "../settings/repo-config.js";
import type { PlanChanges } from "./changes.js";
import { evaluateCelPolicies, type CelPolicy, type PolicyContext, type PolicyOutcome } from "./cel-policy.js";
import { evaluatePolicies, type PolicyViolation } from "./policy.js";

/**
 * What the policies decided about one project's plan, and what /override
 * changed of it: kept with the run (runs.policy), so the comment, the checks,
 * the approval status and /override read it without evaluating again. Pure.
 */

/** Who owns a policy: who may /override its deny, whose approvals its require_approval needs. */
export interface PolicyOwners {
  teams: string[];
  users: string[];
}

/** One policy's outcome on one plan, with what its owners did about it. */
export interface JudgedOutcome extends PolicyOutcome {
  /** Where the policy comes from: the organisation's policy repository, or this repository's .plangate.yml. */
  source: "organisation" | "repository";
  owners: PolicyOwners;
  /** require_approval: how many owners must approve. */
  approvals?: number;
  /** An owner let this plan through (deny, or a rule that failed). */
  overridden?: { actor: string; reason: string };
  /** An override given on an earlier plan of the pull request, which this plan's change does not match. */
  voided?: { actor: string };
}

/** What runs.policy holds. */
export interface RunPolicy {
  outcomes: JudgedOutcome[];
}

/** An override as recorded (db/policy-overrides.ts). */
export interface GivenOverride {
  policy: string;
  project: string;
  workspace: string;
  fingerprint: string;
  actor: string;
  reason: string;
}

/** The plan an outcome is about: overrides hold only for its project, workspace and change fingerprint. */
export interface PlanKey {
  project: string;
  workspace: string;
  fingerprint: string;
}

type WithSource = PolicyConfig & { source?: "organisation" };

const isCel = (p: PolicyConfig): p is PolicyConfig & { name: string; rule: string } => p.rule !== undefined && p.name !== undefined;

/** The policies in the CEL form, as the evaluator takes them. */
export function celPolicies(policies: PolicyConfig[]): (CelPolicy & { source: JudgedOutcome["source"]; owners: PolicyOwners; approvals?: number })[] {
  return policies.filter(isCel).map((p) => ({
    name: p.name,
    rule: p.rule,
    effect: p.effect ?? "deny",
    ...(p.message ? { message: p.message } : {}),
    ...(p.scope ? { scope: p.scope } : {}),
    ...(p.projects ? { projects: p.projects } : {}),
    source: (p as WithSource).source === "organisation" ? "organisation" : "repository",
    owners: { teams: p.owners?.teams ?? [], users: p.owners?.users ?? [] },
    ...(p.effect === "require_approval" ? { approvals: p.approvals ?? 1 } : {}),
  }));
}

/** The short-form policies (deny, max_changes, require_approvals). */
export const shortFormPolicies = (policies: PolicyConfig[]) => policies.filter((p) => p.rule === undefined);

const projectMatches = (globs: string[], name: string) => picomatch.isMatch(name, globs);

/** What a run's policies found: the short form's violations, and each CEL policy's outcome with the overrides that hold for this plan. */
export interface PlanJudgement {
  violations: PolicyViolation[];
  policy: RunPolicy;
  /** Whether the plan fails plangate/plan: a short-form violation, or a deny (or a failed rule) no owner overrode. */
  blocked: boolean;
}

/** Evaluates every policy on one plan (see overruled for the overrides given on the PR). Pure. */
export function judgePlan(policies: PolicyConfig[], changes: PlanChanges, context: PolicyContext): PlanJudgement {
  const { violations } = evaluatePolicies(shortFormPolicies(policies), changes);
  const cel = celPolicies(policies);
  const byName = new Map(cel.map((p) => [p.name, p]));
  const outcomes = evaluateCelPolicies(cel, changes, context, projectMatches).map((o): JudgedOutcome => {
    const p = byName.get(o.policy)!;
    return { ...o, source: p.source, owners: p.owners, ...(p.approvals ? { approvals: p.approvals } : {}) };
  });
  return { violations, policy: { outcomes }, blocked: violations.length > 0 || outcomes.some(isBlocking) };
}

/** A deny, or a rule that could not be evaluated (it fails closed), that no owner overrode. */
export const isBlocking = (o: JudgedOutcome) => (o.effect === "deny" || o.error !== undefined) && !o.overridden;

/** Whether /override NAME can do anything for this outcome. */
export const isOverridable = (o: JudgedOutcome, name: string) => o.policy === name && isBlocking(o);

/**
 * Marks the outcomes that an override given on this very plan lets through;
 * an override of the same policy given on another plan (another fingerprint)
 * is voided, and the outcome says so.
 */
export function withOverrides(policy: RunPolicy, key: PlanKey, overrides: GivenOverride[]): RunPolicy {
  const mine = overrides.filter((o) => o.project === key.project && o.workspace === key.workspace);
  return {
    outcomes: policy.outcomes.map((o) => {
      if (!isBlocking(o)) return o;
      const given = mine.find((g) => g.policy === o.policy && g.fingerprint === key.fingerprint);
      if (given) return { ...o, overridden: { actor: given.actor, reason: given.reason } };
      const earlier = mine.findLast((g) => g.policy === o.policy);
      return earlier ? { ...o, voided: { actor: earlier.actor } } : o;
    }),
  };
}

/** Whether `user` owns a policy: named in its users, or a member of one of its teams (asked only when needed). */
export async function isOwner(owners: PolicyOwners, user: string, isTeamMember: (team: string, user: string) => Promise<boolean>): Promise<boolean> {
  if (owners.users.some((u) => u.toLowerCase() === user.toLowerCase())) return true;
  for (const team of owners.teams) if (await isTeamMember(team, user)) return true;
  return false;
}

/** The judgement with the overrides given on the PR applied (read only when something blocks). */
export function overruled(judgement: PlanJudgement, key: PlanKey, overrides: GivenOverride[]): PlanJudgement {
  const policy = withOverrides(judgement.policy, key, overrides);
  return { ...judgement, policy, blocked: judgement.violations.length > 0 || policy.outcomes.some(isBlocking) };
}
