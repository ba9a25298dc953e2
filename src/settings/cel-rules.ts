import { Environment, type ASTNode } from "@marcbachmann/cel-js";

/**
 * Policy rules in CEL (DESIGN.md section 2, "Policies"), with
 * @marcbachmann/cel-js: compiled and type-checked when the config is read
 * (a problem is a config error at the rule), evaluated by plans/cel-policy.ts.
 */

export type PolicyScope = "resource" | "plan";

/** A rule's compile problem: where in the rule text (from 0) and what. */
export interface RuleProblem {
  offset: number;
  message: string;
}

/** A class of its own per CEL message type (the environment tells types apart by constructor), built from a plain record. */
const messageType = () =>
  class {
    constructor(values: Record<string, unknown>) {
      Object.assign(this, values);
    }
  };
export const Resource = messageType();
export const Project = messageType();
export const PullRequest = messageType();
export const Plan = messageType();
export type Resource = InstanceType<typeof Resource>;
export type Project = InstanceType<typeof Project>;
export type PullRequest = InstanceType<typeof PullRequest>;
export type Plan = InstanceType<typeof Plan>;

const LIMITS = { maxAstNodes: 2_000, maxDepth: 32, maxListElements: 1_000, maxMapEntries: 1_000, maxCallArguments: 32 };

function environment(scope: PolicyScope): Environment {
  const env = new Environment({ homogeneousAggregateLiterals: false, limits: LIMITS })
    .registerType("Project", { fields: { name: "string", dir: "string", workspace: "string", engine: "string" }, ctor: Project })
    .registerType("PullRequest", { fields: { number: "int", author: "string", labels: "list<string>", base: "string", head_sha: "string" }, ctor: PullRequest })
    .registerType("Plan", { fields: { add: "int", change: "int", destroy: "int", replace: "int" }, ctor: Plan })
    .registerVariable("project", "Project")
    .registerVariable("pull_request", "PullRequest")
    .registerVariable("plan", "Plan");
  if (scope === "plan") return env;
  return env
    .registerType("Resource", {
      fields: {
        address: "string", type: "string", name: "string", module: "string", provider: "string", mode: "string",
        actions: "list<string>", replace: "bool", importing: "bool", before: "dyn", after: "dyn", after_unknown: "dyn",
      },
      ctor: Resource,
    })
    .registerVariable("resource", "Resource");
}

const ENVIRONMENTS = { resource: environment("resource"), plan: environment("plan") };

/** The comprehension macros: each runs its body once per element of its receiver. */
const COMPREHENSIONS = new Set(["all", "exists", "exists_one", "map", "filter"]);

/** How deep comprehensions nest in a rule (its cost grows as the input's size to that power), and its node count. */
function shape(node: unknown): { depth: number; nodes: number; problem?: RuleProblem } {
  if (!node || typeof node !== "object" || !("op" in node)) return { depth: 0, nodes: 0 };
  const n = node as ASTNode & { args: unknown; pos?: number };
  const children = (Array.isArray(n.args) ? n.args.flat() : [n.args]).filter((c) => c && typeof c === "object");
  const inner = children.map(shape);
  const problem = inner.find((s) => s.problem)?.problem ?? regexProblem(n);
  const nodes = 1 + inner.reduce((sum, s) => sum + s.nodes, 0);
  const deepest = Math.max(0, ...inner.map((s) => s.depth));
  const comprehension = (n.op === "rcall" || n.op === "call") && Array.isArray(n.args) && COMPREHENSIONS.has(String(n.args[0]));
  return { depth: deepest + (comprehension ? 1 : 0), nodes, problem };
}

/**
 * `matches()` runs JavaScript regular expressions, which can backtrack for
 * ever: only a literal pattern without nested quantifiers, backreferences or
 * lookaround is accepted (what RE2, CEL's own engine, would also refuse or
 * run in linear time).
 */
function regexProblem(n: ASTNode & { pos?: number }): RuleProblem | undefined {
  if (n.op !== "rcall" && n.op !== "call") return undefined;
  const args = n.args as unknown[];
  if (args[0] !== "matches") return undefined;
  const list = (args[args.length - 1] as ASTNode[] | undefined) ?? [];
  const pattern = list[list.length - 1] as (ASTNode & { pos?: number }) | undefined;
  if (!pattern || pattern.op !== "value" || typeof pattern.args !== "string") return { offset: n.pos ?? 0, message: "matches() takes a literal pattern" };
  const text = pattern.args;
  if (/\\[1-9]|\(\?[=!<]/.test(text)) return { offset: pattern.pos ?? 0, message: "matches(): backreferences and lookaround are not supported" };
  if (/\([^)]*[+*}][^)]*\)\s*[+*{]/.test(text)) return { offset: pattern.pos ?? 0, message: "matches(): a quantified group that holds a quantifier can take exponential time" };
  try {
    new RegExp(text);
  } catch (error) {
    return { offset: pattern.pos ?? 0, message: `matches(): ${(error as Error).message}` };
  }
  return undefined;
}

/** Comprehensions nested deeper than this are refused at compile time (cost grows as input size to this power). */
export const MAX_NESTING = 2;

/** A rule compiled once: run it with the inputs of one resource (or plan). */
export interface CompiledRule {
  run(inputs: Record<string, unknown>): unknown;
  /** Comprehension nesting depth (0: constant work per evaluation, bar the input's size). */
  depth: number;
  nodes: number;
}

const compiled = new Map<string, CompiledRule | RuleProblem>();

/** Compiles and type-checks a rule; a problem names where in the rule text it is. Cached by text. */
export function compileRule(rule: string, scope: PolicyScope): CompiledRule | RuleProblem {
  const key = `${scope}\u0000${rule}`;
  const cached = compiled.get(key);
  if (cached) return cached;
  const env = ENVIRONMENTS[scope];
  let result: CompiledRule | RuleProblem;
  try {
    const parsed = env.parse(rule);
    const checked = parsed.check();
    if (!checked.valid) {
      const at = (checked.error as { node?: { pos?: number } } | undefined)?.node?.pos ?? 0;
      result = { offset: at, message: firstLine(checked.error?.message ?? "does not type-check") };
    } else if (checked.type !== "bool" && checked.type !== "dyn") {
      result = { offset: 0, message: `must be true or false, not ${checked.type}` };
    } else {
      const { depth, nodes, problem } = shape(parsed.ast);
      if (problem) result = problem;
      else if (depth > MAX_NESTING) result = { offset: 0, message: `nests comprehensions ${depth} deep: at most ${MAX_NESTING} (its cost would grow as the plan's size to that power)` };
      else result = { run: (inputs) => parsed(inputs), depth, nodes };
    }
  } catch (error) {
    const at = (error as { node?: { pos?: number } }).node?.pos ?? 0;
    result = { offset: at, message: firstLine((error as Error).message) };
  }
  if (compiled.size > 10_000) compiled.clear();
  compiled.set(key, result);
  return result;
}

export const firstLine = (text: string) => text.split("\n")[0]!.trim();

export const isProblem = (c: CompiledRule | RuleProblem): c is RuleProblem => "message" in c;

