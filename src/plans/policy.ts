import picomatch from "picomatch";
import type { PolicyConfig } from "../settings/repo-config.js";
import type { ChangeAction, PlanChanges } from "./changes.js";

/**
 * One broken rule: what it refused and the facts a reviewer reads, worded by
 * templates/policy-violation.hbs (render/policy-text.ts).
 */
export type PolicyViolation = {
  /** The policy's place in the list, from 0. */
  policy: number;
  /** The resource changes it refused. */
  addresses: string[];
  /** The sentence of a violation stored before the wording moved to the template. */
  message?: string;
} & (
  | { rule: "deny"; actions: string[]; resourceTypes: string[]; addressPatterns: string[] }
  | { rule: "max_changes"; max: number; count: number }
);

export interface PolicyResult {
  violations: PolicyViolation[];
  /** The highest `require_approvals` of the rules that match a change; 0 when none. */
  requiredApprovals: number;
}

/**
 * Policy actions map onto plan actions. A replace destroys the old object
 * too, so `deny: destroy` refuses it as well: otherwise a PR could get a
 * protected database deleted by changing one force-new attribute.
 */
const ACTIONS: Record<string, ChangeAction[]> = { create: ["create"], update: ["update"], replace: ["replace"], destroy: ["delete", "replace"] };
const COUNTED: ChangeAction[] = ["create", "update", "replace", "delete"];

function matcher(policy: PolicyConfig) {
  const types = policy.resource_types?.length ? picomatch(policy.resource_types) : () => true;
  const addresses = policy.addresses?.length ? picomatch(policy.addresses) : () => true;
  return (r: PlanChanges["resources"][number]) => types(r.type) && addresses(r.address);
}

/** Evaluates the repository's policies on one project's plan. Pure. */
export function evaluatePolicies(policies: PolicyConfig[], changes: PlanChanges): PolicyResult {
  const violations: PolicyViolation[] = [];
  let requiredApprovals = 0;
  policies.forEach((policy, index) => {
    const matches = matcher(policy);
    const scoped = changes.resources.filter((r) => COUNTED.includes(r.action) && matches(r));
    if (policy.deny !== undefined) {
      const denied = new Set((Array.isArray(policy.deny) ? policy.deny : [policy.deny]).flatMap((a) => ACTIONS[a] ?? []));
      const hits = scoped.filter((r) => denied.has(r.action));
      if (hits.length) {
        const actions = Array.isArray(policy.deny) ? policy.deny : [policy.deny];
        violations.push({ policy: index, rule: "deny", actions, resourceTypes: policy.resource_types ?? [], addressPatterns: policy.addresses ?? [], addresses: hits.map((r) => r.address) });
      }
    }
    if (policy.max_changes !== undefined && scoped.length > policy.max_changes) {
      violations.push({ policy: index, rule: "max_changes", max: policy.max_changes, count: scoped.length, addresses: [] });
    }
    if (policy.require_approvals !== undefined && scoped.length) requiredApprovals = Math.max(requiredApprovals, policy.require_approvals);
  });
  return { violations, requiredApprovals };
}
