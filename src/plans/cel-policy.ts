import { compileRule, firstLine, isProblem, NO_PULL_REQUEST, Plan, Project, PullRequest, Resource, type CompiledRule, type PolicyScope } from "../settings/cel-rules.js";
import { SENSITIVE, UNKNOWN, type PlanChanges, type ResourceChange } from "./changes.js";

/**
 * Evaluates CEL policies (compiled by settings/cel-rules.ts) on a plan: per
 * resource change, or once per plan (`scope: plan`). Pure.
 */

/** What every rule may read besides `resource`. */
export interface PolicyContext {
  project: { name: string; dir: string; workspace: string; engine: string };
  /** Null for drift checks. */
  pull_request: { number: number; author: string; labels: string[]; base: string; head_sha: string } | null;
}

/**
 * A value as a rule sees it: sensitive values as "(sensitive)", unknown ones
 * absent, whole numbers as CEL ints. Copied only where something changes: a
 * map or list of strings is handed over as the plan holds it (rules cannot
 * change it), as this runs once per resource change a rule reads. A copied
 * map has no prototype (cel-js reads it as a map), so a key such as
 * `__proto__` stays plain data.
 */
function celValue(value: unknown): unknown {
  if (typeof value === "number") return Number.isInteger(value) ? BigInt(value) : value;
  if (!value || typeof value !== "object") return value;
  if (value === SENSITIVE || (value as { __plangate__?: string }).__plangate__ === "sensitive") return "(sensitive)";
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const unknown = isUnknown(v);
      const c = unknown ? undefined : celValue(v);
      if (!out && (unknown || c !== v)) out = value.slice(0, i);
      if (out && !unknown) out.push(c);
    }
    return out ?? value;
  }
  const keys = Object.keys(value);
  let out: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const v = (value as Record<string, unknown>)[keys[i]!];
    const unknown = isUnknown(v);
    const c = unknown ? undefined : celValue(v);
    if (!out && (unknown || c !== v)) {
      out = Object.create(null) as Record<string, unknown>;
      for (let j = 0; j < i; j++) out[keys[j]!] = (value as Record<string, unknown>)[keys[j]!];
    }
    if (out && !unknown) out[keys[i]!] = c;
  }
  return out ?? value;
}
const isUnknown = (v: unknown) => v === UNKNOWN || (!!v && typeof v === "object" && (v as { __plangate__?: string }).__plangate__ === "unknown");

/** Where `after` holds unknown values: true at each such path (terraform's after_unknown shape). */
function unknownShape(value: unknown): unknown {
  if (isUnknown(value)) return true;
  if (Array.isArray(value)) return value.map(unknownShape);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const s = unknownShape(v);
      if (s !== false) Object.defineProperty(out, k, { value: s, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return false;
}

/** The size of a value (its nodes): what a comprehension over it may walk. */
function sizeOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + value.reduce((n: number, v) => n + sizeOf(v), 0);
  if (value && typeof value === "object") return 1 + Object.values(value).reduce((n: number, v) => n + sizeOf(v), 0);
  return 1;
}

/** The provisioner types (local-exec, remote-exec, file) that run at apply for each resource change this plan creates, replaces or destroys. */
function provisionersByAddress(changes: PlanChanges): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const code of changes.applyTime ?? []) {
    const types = [...new Set(code.provisioners.map((p) => p.type))];
    for (const instance of code.instances) found.set(instance.address, types);
  }
  return found;
}

/**
 * A resource change as rules see it, and the size of its values (what a
 * comprehension over them may walk); `provisioners`: those its apply runs;
 * `read`: called on every read of its values (the evaluator's cost meter).
 */
export function resourceInput(change: ResourceChange, provisioners: string[] = [], read: () => void = () => undefined): { value: Resource; size: () => number } {
  const address = change.address;
  const module = /^((?:module\.[^.[]+(?:\[[^\]]*\])?\.)*)/.exec(address)![1]!.replace(/\.$/, "");
  const local = address.slice(module ? module.length + 1 : 0).replace(/\[[^\]]*\]$/, "");
  const mode = local.startsWith("data.") ? "data" : "managed";
  const name = local.split(".").at(-1)!;
  const value = new Resource({
    address,
    type: change.type,
    name,
    module,
    provider: change.provider ?? "",
    mode,
    actions: change.actions,
    replace: change.action === "replace",
    importing: !!change.imported,
    module_source: change.moduleSource ?? "",
    provider_version_constraint: change.providerVersionConstraint ?? "",
    provisioners,
  }, {
    before: () => celValue(change.before ?? null),
    after: () => celValue(change.after ?? null),
    after_unknown: () => unknownShape(change.after ?? null),
    read,
  });
  let size: number | undefined;
  return { value, size: () => (size ??= sizeOf(value.before) + sizeOf(value.after)) };
}

export function planInput(changes: PlanChanges): Plan {
  const c = changes.counts;
  return new Plan({ add: BigInt(c.add), change: BigInt(c.change), destroy: BigInt(c.destroy), replace: BigInt(c.replace) });
}

/** The project and pull request as rules see them; no pull request (drift) is NO_PULL_REQUEST, which equals null in a rule. */
export function contextInputs(context: PolicyContext): { project: Project; pull_request: PullRequest } {
  const pr = context.pull_request;
  return {
    project: new Project({ ...context.project }),
    pull_request: pr ? new PullRequest({ ...pr, number: BigInt(pr.number) }) : NO_PULL_REQUEST,
  };
}

/** The work one rule may do on one plan: evaluations times the input walked, past which it fails naming the policy. */
export const COST_LIMIT = 50_000_000;

/** The estimated cost of running `rule` on an input of `size` nodes (or on the longest list the rule writes, if longer). */
export const costOf = (rule: CompiledRule, size: number) => rule.nodes * Math.max(1, size, rule.widest) ** rule.depth;

/** Thrown by the cost meter inside an evaluation: the rule reached its cost limit. */
class CostLimit extends Error {}

/** A CEL policy as the config gives it (settings/repo-config.ts). */
export interface CelPolicy {
  name: string;
  rule: string;
  effect: "deny" | "warn" | "require_approval";
  message?: string;
  scope?: PolicyScope;
  /** Globs of project names it applies to (default: all). */
  projects?: string[];
}

/** What one policy found in one project's plan. */
export interface PolicyOutcome {
  policy: string;
  effect: CelPolicy["effect"];
  /** The resource changes it matched (at most MAX_ADDRESSES; `matched` counts them all); empty for a plan-scoped match. */
  addresses: string[];
  matched: number;
  message?: string;
  /** The rule could not be evaluated (an error, or its cost limit): the policy fails closed, as a deny. */
  error?: string;
}

/** Addresses kept per outcome: a 10,000-resource match is counted, not listed. */
export const MAX_ADDRESSES = 200;

/**
 * Evaluates CEL policies on one project's plan: each policy whose `projects`
 * match, per resource change (or once, `scope: plan`). A rule that errs, is
 * not true or false, or passes its cost limit is an outcome with `error`,
 * naming the policy: it fails closed. Pure.
 */
export function evaluateCelPolicies(policies: CelPolicy[], changes: PlanChanges, context: PolicyContext, projectMatches: (globs: string[], name: string) => boolean): PolicyOutcome[] {
  const shared = { ...contextInputs(context), plan: planInput(changes) };
  let resources: ReturnType<typeof resourceInput>[] | undefined;
  /** What reading a resource's values charges, for the policy being evaluated. */
  const meter: { read?: () => void } = {};
  const outcomes: PolicyOutcome[] = [];
  for (const policy of policies) {
    if (policy.projects?.length && !projectMatches(policy.projects, context.project.name)) continue;
    const base = { policy: policy.name, effect: policy.effect, ...(policy.message ? { message: policy.message } : {}) };
    const rule = compileRule(policy.rule, policy.scope ?? "resource");
    if (isProblem(rule)) {
      outcomes.push({ ...base, addresses: [], matched: 0, error: `does not compile: ${rule.message}` });
      continue;
    }
    if (policy.scope === "plan") {
      const result = runRule(rule, shared);
      if (result !== true && result !== false) outcomes.push({ ...base, addresses: [], matched: 0, error: result.error });
      else if (result) outcomes.push({ ...base, addresses: [], matched: 1 });
      continue;
    }
    if (!resources) {
      const provisioners = provisionersByAddress(changes);
      const read = () => meter.read?.();
      resources = changes.resources.map((r) => resourceInput(r, provisioners.get(r.address), read));
    }
    const matched: string[] = [];
    let error: string | undefined;
    // Each evaluation costs the rule's work on what it always has (bounded by the rule's own lists); a rule
    // that reads a resource's values is charged for walking them then, before it can: most rules never do.
    const always = costOf(rule, 1);
    let cost = 0;
    let i = 0;
    let charged = -1;
    let over = false;
    const list = resources;
    meter.read =
      rule.depth === 0
        ? undefined
        : () => {
            if (charged === i) return;
            charged = i;
            cost += costOf(rule, list[i]!.size()) - always;
            if (cost > COST_LIMIT) {
              over = true; // a comprehension may swallow the error below: the flag holds whatever the rule does with it
              throw new CostLimit("cost limit");
            }
          };
    // One inputs object for the whole loop: a copy per resource change is garbage by the hundred thousand.
    const inputs: Record<string, unknown> = { ...shared, resource: undefined };
    for (i = 0; i < list.length; i++) {
      if (rule.types && !rule.types.has(changes.resources[i]!.type)) continue;
      cost += always;
      if (cost > COST_LIMIT) over = true;
      inputs.resource = over ? undefined : list[i]!.value;
      const result = over ? false : runRule(rule, inputs);
      if (over) {
        error = `exceeded its cost limit (${COST_LIMIT.toLocaleString("en")}) after ${i} of ${list.length} resource changes`;
        break;
      }
      if (result !== true && result !== false) {
        error = `failed on ${changes.resources[i]!.address}: ${result.error}`;
        break;
      }
      if (result) matched.push(changes.resources[i]!.address);
    }
    meter.read = undefined;
    if (error) outcomes.push({ ...base, addresses: matched.slice(0, MAX_ADDRESSES), matched: matched.length, error });
    else if (matched.length) outcomes.push({ ...base, addresses: matched.slice(0, MAX_ADDRESSES), matched: matched.length });
  }
  return outcomes;
}

/** The rule's answer, or why there is none (a bare boolean: this runs once per policy and resource change). */
function runRule(rule: CompiledRule, inputs: Record<string, unknown>): boolean | { error: string } {
  try {
    const value = rule.run(inputs);
    if (typeof value !== "boolean") return { error: `gave ${typeof value === "bigint" ? "a number" : typeof value}, not true or false` };
    return value;
  } catch (error) {
    return { error: firstLine((error as Error).message) };
  }
}
