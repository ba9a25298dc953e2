import { Environment, type ASTNode } from "@marcbachmann/cel-js";
import { RE2JS } from "re2js";

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
export const Project = messageType();
export const PullRequest = messageType();
export const Plan = messageType();
export type Project = InstanceType<typeof Project>;
export type PullRequest = InstanceType<typeof PullRequest>;
export type Plan = InstanceType<typeof Plan>;

/** How a resource change's values (copies made for rules) are built: only when a rule first reads them. */
export interface ResourceValues {
  before(): unknown;
  after(): unknown;
  after_unknown(): unknown;
  /** Called on every read of a value, before it is returned: where the evaluator charges what a rule may walk. */
  read(): void;
}

const UNREAD = Symbol("unread");

/**
 * `resource`: its plain fields given, its values built on first read (most
 * rules never read them, and copying them is most of the work). One class,
 * one shape for every instance, so field reads stay fast.
 */
export class Resource {
  readonly #values: ResourceValues;
  #before: unknown = UNREAD;
  #after: unknown = UNREAD;
  #afterUnknown: unknown = UNREAD;
  constructor(fields: Record<string, unknown>, values: ResourceValues) {
    Object.assign(this, fields);
    this.#values = values;
  }
  get before(): unknown {
    this.#values.read();
    return this.#before === UNREAD ? (this.#before = this.#values.before()) : this.#before;
  }
  get after(): unknown {
    this.#values.read();
    return this.#after === UNREAD ? (this.#after = this.#values.after()) : this.#after;
  }
  get after_unknown(): unknown {
    this.#values.read();
    return this.#afterUnknown === UNREAD ? (this.#afterUnknown = this.#values.after_unknown()) : this.#afterUnknown;
  }
}

/**
 * `pull_request` when there is none (drift checks): CEL's variables are typed,
 * and cel-js refuses a null where a PullRequest is declared, so rules see this
 * instance, equal to null (`pull_request == null`); reading a field of it is
 * an error, as reading one of null would be.
 */
export const NO_PULL_REQUEST = new PullRequest({});
const isNull = (value: unknown) => value === null || value === NO_PULL_REQUEST;

/** What `x.matches(p)` calls once compiled: RE2 (linear time in the text), never JavaScript's backtracking RegExp. */
const RE2_MATCHES = "matches_re2";
const patterns = new Map<string, RE2JS>();

/** A pattern compiled by RE2 (cached: rules repeat theirs on every resource), or RE2's complaint. */
function re2(pattern: string): RE2JS {
  let compiled = patterns.get(pattern);
  if (!compiled) {
    compiled = RE2JS.compile(pattern);
    if (patterns.size > 10_000) patterns.clear();
    patterns.set(pattern, compiled);
  }
  return compiled;
}

const answers = new Map<string, Map<string, boolean>>();

/** `text.matches(pattern)`, remembered per pattern for short texts: a plan repeats its names, providers and constraints thousands of times. */
function re2Matches(text: string, pattern: string): boolean {
  if (text.length > 200) return re2(pattern).test(text);
  let known = answers.get(pattern);
  if (!known) {
    if (answers.size > 1_000) answers.clear();
    answers.set(pattern, (known = new Map()));
  }
  let answer = known.get(text);
  if (answer === undefined) {
    answer = re2(pattern).test(text);
    if (known.size > 10_000) known.clear();
    known.set(text, answer);
  }
  return answer;
}

const LIMITS = { maxAstNodes: 2_000, maxDepth: 32, maxListElements: 1_000, maxMapEntries: 1_000, maxCallArguments: 32 };

function environment(scope: PolicyScope): Environment {
  const env = new Environment({ homogeneousAggregateLiterals: false, limits: LIMITS })
    .registerType("Project", { fields: { name: "string", dir: "string", workspace: "string", engine: "string" }, ctor: Project })
    .registerType("PullRequest", { fields: { number: "int", author: "string", labels: "list<string>", base: "string", head_sha: "string" }, ctor: PullRequest })
    .registerType("Plan", { fields: { add: "int", change: "int", destroy: "int", replace: "int" }, ctor: Plan })
    .registerOperator("PullRequest == null", (a: unknown, b: unknown) => isNull(a) && isNull(b))
    .registerFunction(`string.${RE2_MATCHES}(string): bool`, re2Matches)
    .registerVariable("project", "Project")
    .registerVariable("pull_request", "PullRequest")
    .registerVariable("plan", "Plan");
  if (scope === "plan") return env;
  return env
    .registerType("Resource", {
      fields: {
        address: "string", type: "string", name: "string", module: "string", provider: "string", mode: "string",
        actions: "list<string>", replace: "bool", importing: "bool", before: "dyn", after: "dyn", after_unknown: "dyn",
        module_source: "string", provider_version_constraint: "string", provisioners: "list<string>",
      },
      ctor: Resource,
    })
    .registerVariable("resource", "Resource");
}

const ENVIRONMENTS = { resource: environment("resource"), plan: environment("plan") };

/** The comprehension macros: each runs its body once per element of its receiver. */
const COMPREHENSIONS = new Set(["all", "exists", "exists_one", "map", "filter"]);

/** How deep comprehensions nest in a rule (its cost grows as the input's size to that power), and its node count. */
function shape(node: unknown, calls: MatchesCall[] = []): { depth: number; nodes: number; widest: number; problem?: RuleProblem; calls: MatchesCall[] } {
  if (!node || typeof node !== "object" || !("op" in node)) return { depth: 0, nodes: 0, widest: 0, calls };
  const n = node as ASTNode;
  const call = matchesCall(n);
  if (call) calls.push(call);
  const children = (Array.isArray(n.args) ? (n.args as unknown[]).flat() : [n.args]).filter((c) => c && typeof c === "object");
  const inner = children.map((c) => shape(c, calls));
  const problem = inner.find((s) => s.problem)?.problem ?? regexProblem(n);
  const nodes = 1 + inner.reduce((sum, s) => sum + s.nodes, 0);
  const deepest = Math.max(0, ...inner.map((s) => s.depth));
  const comprehension = (n.op === "rcall" || n.op === "call") && Array.isArray(n.args) && COMPREHENSIONS.has(String(n.args[0]));
  // A list written in the rule is walked like the input: a comprehension over it costs its length.
  const widest = Math.max(n.op === "list" && Array.isArray(n.args) ? n.args.length : 0, ...inner.map((s) => s.widest));
  return { depth: deepest + (comprehension ? 1 : 0), nodes, widest, problem, calls };
}

/** A `matches()` call: its node, receiver and literal pattern. */
type MatchesCall = { node: ASTNode; receiver: ASTNode; pattern: ASTNode };

function matchesCall(n: ASTNode): MatchesCall | undefined {
  if (n.op !== "rcall") return undefined;
  const [name, receiver, list] = n.args as unknown as [string, ASTNode, ASTNode[]];
  return name === "matches" && list.length === 1 ? { node: n, receiver, pattern: list[0]! } : undefined;
}

/**
 * `matches()` runs RE2 (CEL's own engine): linear in the text whatever the
 * pattern. The pattern must be a literal, so RE2's refusal (backreferences,
 * lookaround, bad syntax) is a config error at the rule.
 */
function regexProblem(n: ASTNode): RuleProblem | undefined {
  if ((n.op !== "rcall" && n.op !== "call") || (n.args as unknown[])[0] !== "matches") return undefined;
  const call = matchesCall(n);
  if (!call || call.pattern.op !== "value" || typeof call.pattern.args !== "string") return { offset: n.pos, message: "matches() takes a literal pattern" };
  try {
    re2(call.pattern.args);
  } catch (error) {
    return { offset: call.pattern.pos, message: `matches(): ${firstLine((error as Error).message)}` };
  }
  return undefined;
}

/** Every `x.matches(p)` of a rule (which compiled) as `x.matches_re2(p)`: the text only changes at each method name. */
function withRe2(rule: string, calls: MatchesCall[]): string {
  let text = rule;
  for (const { receiver, pattern } of [...calls].sort((a, b) => b.pattern.start - a.pattern.start)) {
    // Between the receiver and the pattern: `.matches(`, perhaps with spaces, comments or a closing parenthesis.
    const gap = text.slice(receiver.end, pattern.start);
    const name = /matches(?=(?:\s|\/\/[^\n]*\n)*\((?:\s|\/\/[^\n]*\n)*$)/.exec(gap);
    if (!name) throw new Error("matches(): could not be compiled");
    const at = receiver.end + name.index;
    text = `${text.slice(0, at)}${RE2_MATCHES}${text.slice(at + "matches".length)}`;
  }
  return text;
}

const isResourceType = (n: ASTNode | undefined) => n?.op === "." && (n.args as unknown[])[1] === "type" && (n.args as ASTNode[])[0]?.op === "id" && (n.args as ASTNode[])[0]?.args === "resource";
const stringValue = (n: ASTNode | undefined) => (n?.op === "value" && typeof n.args === "string" ? n.args : undefined);

/** The types a test `resource.type == "x"`, `"x" == resource.type` or `resource.type in ["x", …]` allows; undefined for any other node. */
function typeTest(n: ASTNode): string[] | undefined {
  if ((n.op !== "==" && n.op !== "in") || !Array.isArray(n.args)) return undefined;
  const [a, b] = n.args as unknown as [ASTNode, ASTNode];
  if (n.op === "==") {
    const value = isResourceType(a) ? stringValue(b) : isResourceType(b) ? stringValue(a) : undefined;
    return value === undefined ? undefined : [value];
  }
  if (n.op === "in" && isResourceType(a) && b?.op === "list" && Array.isArray(b.args)) {
    const values = (b.args as unknown as ASTNode[]).map(stringValue);
    return values.every((v) => v !== undefined) ? (values as string[]) : undefined;
  }
  return undefined;
}

/**
 * The resource types a rule can match at all, when one of its top-level
 * `&&` terms tests `resource.type` against literals: on any other type that
 * term is false, and so is the rule (in CEL, false && anything is false, an
 * error included). The evaluator skips those resource changes unevaluated.
 */
function typesOf(n: ASTNode): Set<string> | undefined {
  if (n.op === "&&" && Array.isArray(n.args)) {
    const [a, b] = n.args as unknown as [ASTNode, ASTNode];
    return typesOf(a) ?? typesOf(b);
  }
  const types = typeTest(n);
  return types && new Set(types);
}

/** Comprehensions nested deeper than this are refused at compile time (cost grows as input size to this power). */
export const MAX_NESTING = 2;

/** A rule compiled once: run it with the inputs of one resource (or plan). */
export interface CompiledRule {
  run(inputs: Record<string, unknown>): unknown;
  /** Comprehension nesting depth (0: constant work per evaluation, bar the input's size). */
  depth: number;
  nodes: number;
  /** The longest list written in the rule (a comprehension may walk it whatever the input). */
  widest: number;
  /** The only resource types it can match (see typesOf); undefined: any. */
  types?: Set<string>;
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
      const { depth, nodes, widest, problem, calls } = shape(parsed.ast);
      if (problem) result = problem;
      else if (depth > MAX_NESTING) result = { offset: 0, message: `nests comprehensions ${depth} deep: at most ${MAX_NESTING} (its cost would grow as the plan's size to that power)` };
      else {
        const run = calls.length ? env.parse(withRe2(rule, calls)) : parsed;
        if (run !== parsed && !run.check().valid) throw new Error("matches(): could not be compiled");
        const types = scope === "resource" ? typesOf(parsed.ast as ASTNode) : undefined;
        result = { run: (inputs) => run(inputs), depth, nodes, widest, ...(types ? { types } : {}) };
      }
    }
  } catch (error) {
    const at = (error as { node?: { pos?: number } }).node?.pos ?? 0;
    result = { offset: at, message: firstLine((error as Error).message) };
  }
  if (compiled.size > 10_000) compiled.clear();
  compiled.set(key, result);
  return result;
}

/** The first line of an error (cel-js adds the rule with a caret below), with the name matches() runs as given back. */
export const firstLine = (text: string) => text.split("\n")[0]!.trim().replaceAll(RE2_MATCHES, "matches");

export const isProblem = (c: CompiledRule | RuleProblem): c is RuleProblem => "message" in c;

