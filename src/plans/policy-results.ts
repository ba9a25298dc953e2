import picomatch from "picomatch";
import type { PolicyConfig } from "../settings/repo-config.js";
import type { PlanChanges } from "./changes.js";
import type { PolicyContext } from "./cel-policy.js";
import { celPolicies, judgePlan } from "./policy-judgement.js";
import { evaluatePolicies, type PolicyViolation } from "./policy.js";

/**
 * Every policy's result on one plan, passes and skips included, in the
 * config's order: what `plangate policy test` and `plangate plan DIR` print.
 * The same evaluation as a pull request's plan (judgePlan). Pure.
 */

export type PolicyResult = {
  /** The CEL form's name; the short form has none and goes by its place (`number`, from 1). */
  name?: string;
  number: number;
  effect: "deny" | "warn" | "require_approval";
  message?: string;
  /** pass: matched nothing; match: matched (see effect); error: could not be evaluated, so it fails closed; skipped: its `projects` globs leave this project out. */
  status: "pass" | "match" | "error" | "skipped";
  /** The resource changes it matched (at most MAX_ADDRESSES); `matched` counts them all. */
  addresses: string[];
  matched: number;
  error?: string;
  projects?: string[];
  /** The short form: what it says (deny destroy, max_changes 10…), as a PolicyViolation words it. */
  short?: PolicyViolation | { rule: "require_approvals"; approvals: number };
};

/** Whether a result stops a pull request's plan: a deny that matched, or a rule that could not be evaluated. */
export const denies = (r: PolicyResult) => (r.status === "match" && r.effect === "deny") || r.status === "error";

export function policyResults(policies: PolicyConfig[], changes: PlanChanges, context: PolicyContext): PolicyResult[] {
  const judged = new Map(judgePlan(policies, changes, context).policy.outcomes.map((o) => [o.policy, o]));
  const cel = new Map(celPolicies(policies).map((p) => [p.name, p]));
  return policies.map((policy, index): PolicyResult => {
    const number = index + 1;
    if (policy.rule === undefined) return shortForm(policy, number, changes);
    const p = cel.get(policy.name!)!;
    const base = { name: p.name, number, effect: p.effect, ...(p.message ? { message: p.message } : {}), addresses: [], matched: 0 };
    if (p.projects?.length && !picomatch.isMatch(context.project.name, p.projects)) return { ...base, status: "skipped", projects: p.projects };
    const outcome = judged.get(p.name);
    if (!outcome) return { ...base, status: "pass" };
    if (outcome.error !== undefined) return { ...base, status: "error", error: outcome.error, addresses: outcome.addresses, matched: outcome.matched };
    // A plan-scoped rule matches the plan as a whole, not resource changes.
    return { ...base, status: "match", addresses: outcome.addresses, matched: p.scope === "plan" ? 0 : outcome.matched };
  });
}

function shortForm(policy: PolicyConfig, number: number, changes: PlanChanges): PolicyResult {
  const { violations, requiredApprovals } = evaluatePolicies([policy], changes);
  const violation = violations[0] && { ...violations[0], policy: number - 1 };
  if (policy.require_approvals !== undefined) {
    const short = { rule: "require_approvals" as const, approvals: policy.require_approvals };
    return { number, effect: "require_approval", status: requiredApprovals > 0 ? "match" : "pass", addresses: [], matched: 0, short };
  }
  if (!violation) return { number, effect: "deny", status: "pass", addresses: [], matched: 0, short: shortDescription(policy, number) };
  return { number, effect: "deny", status: "match", addresses: violation.addresses, matched: violation.rule === "max_changes" ? violation.count : violation.addresses.length, short: violation };
}

/** What a short-form policy says, as its violation would word it. */
function shortDescription(policy: PolicyConfig, number: number): PolicyViolation {
  if (policy.max_changes !== undefined) return { policy: number - 1, rule: "max_changes", max: policy.max_changes, count: 0, addresses: [] };
  const actions = Array.isArray(policy.deny) ? policy.deny : [policy.deny!];
  return { policy: number - 1, rule: "deny", actions, resourceTypes: policy.resource_types ?? [], addressPatterns: policy.addresses ?? [], addresses: [] };
}
