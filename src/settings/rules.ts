import { isDeepStrictEqual } from "node:util";
import { normalDir } from "./dir-rules.js";
import type { CredentialsConfig, PolicyConfig, ProjectConfig, RepoConfig } from "./repo-config.js";

/**
 * Who decides the rules (DESIGN.md section 2): the keys that gate a change are
 * read from the base branch; a pull request's own file may only tighten them.
 * Everything here is pure: the caller loads both files.
 */

export const RULE_KEYS = ["approvals", "apply", "env", "credentials", "depends_on"] as const;
export type RuleKey = (typeof RULE_KEYS)[number];
export type ApplyMode = ProjectConfig["apply"];

type Approvals = ProjectConfig["approvals"];

export interface ProjectRules {
  approvals: Approvals;
  /** More approval rules that must hold too: from other base entries that match the same project. */
  also_approvals?: Approvals[];
  apply: ApplyMode;
  env: string[];
  /** The short-lived identity its runs get (DESIGN.md section 3): only ever the base branch's. */
  credentials?: CredentialsConfig;
  depends_on: string[];
}

/** Where a rule's value came from, as /help shows it. */
export type RuleSource = "base" | "base defaults" | "built-in" | "pull request";

/** The rules of the base branch as it stands before the PR lands. */
export interface BaseRules {
  /** The commit they were read at. */
  sha: string;
  /** "file": a valid .plangate.yml; "none": no file; "invalid": a broken file (built-in rules apply). */
  state: "file" | "none" | "invalid";
  config?: RepoConfig;
}

export const BUILT_IN_RULES: ProjectRules = {
  approvals: { required: 1, teams: [], users: [] },
  apply: "on_merge",
  env: [],
  depends_on: [],
};

export interface EffectiveRules {
  rules: ProjectRules;
  sources: Record<RuleKey, RuleSource>;
}

/** Where a project's files really are: its dir with symlinks resolved inside the checkout (the loader sets real_dir). */
const realDir = (p: Pick<ProjectConfig, "dir"> & { real_dir?: string }) => normalDir(p.real_dir ?? p.dir);

/**
 * Every base entry for a project: the same name, or the same (normalized,
 * symlink-resolved) dir, in the same workspace; in a workspace the base does
 * not list for that dir or name, every entry of the dir or name. A PR cannot
 * rename, re-spell or link its way out of its rules, nor move them to a new
 * workspace: each matching entry contributes.
 */
function baseProjects(base: BaseRules, project: Pick<ProjectConfig, "name" | "dir" | "workspace"> & { real_dir?: string }): ProjectConfig[] {
  if (base.state !== "file" || !base.config?.projectsListed) return [];
  const dir = realDir(project);
  const same = base.config.projects.filter((p) => p.name === project.name || realDir(p) === dir);
  return same.some((p) => p.workspace === project.workspace) ? same.filter((p) => p.workspace === project.workspace) : same;
}

/** The strictest of several entries' rules: the narrowest apply, only env names all list, every dependency, and every approval rule. */
function strictest(entries: ProjectRules[]): ProjectRules {
  const [first, ...rest] = entries as [ProjectRules, ...ProjectRules[]];
  const all = entries.flatMap((e) => [e.approvals, ...(e.also_approvals ?? [])]);
  // The rule asking most is the one shown first; every other one that asks for something it does not is kept beside it.
  const primary = [...all].sort((a, b) => b.required - a.required)[0]!;
  const also = all.filter((a) => a !== primary && !implied(a, primary)).filter((a, i, list) => list.findIndex((b) => isDeepStrictEqual(a, b)) === i);
  return {
    approvals: primary,
    ...(also.length ? { also_approvals: also } : {}),
    apply: rest.reduce((mode, e) => narrowerApply(mode, e.apply), first.apply),
    env: first.env.filter((n) => rest.every((e) => e.env.includes(n))),
    // Entries that give different identities give none: which one was meant is not for plangate to guess.
    ...(entries.every((e) => isDeepStrictEqual(e.credentials, first.credentials)) && first.credentials ? { credentials: first.credentials } : {}),
    depends_on: [...new Set(entries.flatMap((e) => e.depends_on))],
  };
}

/** Whether meeting `strong` always meets `weak`: the same approvers (or anyone, for weak) and no more approvals. */
function implied(weak: Approvals, strong: Approvals): boolean {
  const sameWho = isDeepStrictEqual([...weak.teams].sort(), [...strong.teams].sort()) && isDeepStrictEqual([...weak.users].sort(), [...strong.users].sort());
  const anyone = weak.teams.length === 0 && weak.users.length === 0;
  const destroyOk = weak.destroy_required === undefined || weak.destroy_required <= Math.max(strong.destroy_required ?? strong.required, strong.required);
  return (sameWho || anyone) && weak.required <= strong.required && destroyOk;
}

const APPLY_PATHS: Record<ApplyMode, string[]> = { on_merge: ["merge"], command: ["command"], both: ["merge", "command"] };

/** The narrower of two apply modes: the ways both allow; when they share none, the base's. */
function narrowerApply(base: ApplyMode, pr: ApplyMode): ApplyMode {
  const both = APPLY_PATHS[base].filter((p) => APPLY_PATHS[pr].includes(p));
  if (both.length === 2) return "both";
  if (both.length === 1) return both[0] === "merge" ? "on_merge" : "command";
  return base;
}

/** Tightens the base approvals with the PR's: higher counts; the PR may restrict approvers only where the base does not. */
function tighterApprovals(base: ProjectRules["approvals"], pr: ProjectRules["approvals"]): ProjectRules["approvals"] {
  const restricted = base.teams.length > 0 || base.users.length > 0;
  const destroy = [base.destroy_required, pr.destroy_required].filter((n): n is number => n !== undefined);
  return {
    required: Math.max(base.required, pr.required),
    teams: restricted ? base.teams : pr.teams,
    users: restricted ? base.users : pr.users,
    ...(destroy.length ? { destroy_required: Math.max(...destroy) } : {}),
  };
}

/**
 * A project's effective rules: the base branch's entry for it, else the base's
 * `defaults:`, else the built-in rules; then tightened by the PR's own file
 * when the project is listed there (`listedByPr`).
 */
export function effectiveRules(base: BaseRules, project: ProjectConfig, listedByPr: boolean): EffectiveRules {
  const matched = baseProjects(base, project);
  const own = matched.length ? strictest(matched.map((p) => ({ approvals: p.approvals, apply: p.apply, env: p.env, credentials: p.credentials, depends_on: p.depends_on }))) : undefined;
  const defaults = base.state === "file" ? base.config?.defaults : undefined;
  const sources = {} as Record<RuleKey, RuleSource>;
  const from = <K extends RuleKey>(key: K): ProjectRules[K] => {
    if (own) {
      sources[key] = "base";
      return own[key] as ProjectRules[K];
    }
    if (defaults?.[key] !== undefined) {
      sources[key] = "base defaults";
      return defaults[key] as ProjectRules[K];
    }
    sources[key] = "built-in";
    return BUILT_IN_RULES[key];
  };
  const also = own?.also_approvals;
  const credentials = from("credentials");
  const baseRules: ProjectRules = { approvals: from("approvals"), ...(also ? { also_approvals: also } : {}), apply: from("apply"), env: from("env"), ...(credentials ? { credentials } : {}), depends_on: from("depends_on") };
  if (!listedByPr) return { rules: baseRules, sources };
  const rules: ProjectRules = {
    ...baseRules,
    approvals: tighterApprovals(baseRules.approvals, project.approvals),
    apply: narrowerApply(baseRules.apply, project.apply),
    // Fewer variables is tighter: only names both files list reach the plan.
    env: baseRules.env.filter((n) => project.env.includes(n)),
    // More ordering is tighter: the PR may add dependencies.
    depends_on: [...new Set([...baseRules.depends_on, ...project.depends_on])],
  };
  for (const key of RULE_KEYS) if (!isDeepStrictEqual(rules[key], baseRules[key])) sources[key] = "pull request";
  return { rules, sources };
}

/**
 * The policies a plan is judged by: the organisation's (PLANGATE_POLICY_REPO,
 * marked by their loader), then the base branch's, which always apply, then
 * any the PR's file adds (it never removes one).
 */
export function effectivePolicies(base: BaseRules, pr: RepoConfig, organisation: PolicyConfig[] = []): PolicyConfig[] {
  const basePolicies = base.state === "file" ? (base.config?.policies ?? []) : [];
  const extra = pr.fromFile ? pr.policies.filter((p) => !basePolicies.some((b) => isDeepStrictEqual(b, p))) : [];
  return distinctNames([...organisation, ...basePolicies, ...extra]);
}

/**
 * A name means one policy: /override, owners and outcomes go by it. A later
 * policy named like an earlier one (a repository's like the organisation's, a
 * PR's like the base's) is still judged, as `NAME.2` (`.3`, …): it can
 * neither replace the first nor lend it its owners.
 */
function distinctNames(policies: PolicyConfig[]): PolicyConfig[] {
  const given = new Set(policies.flatMap((p) => (p.name ? [p.name] : [])));
  const used = new Set<string>();
  return policies.map((p) => {
    if (!p.name) return p;
    let name = p.name;
    // A new name is one no policy has or was given.
    for (let n = 2; used.has(name) || (name !== p.name && given.has(name)); n++) name = `${p.name}.${n}`;
    used.add(name);
    return name === p.name ? p : { ...p, name };
  });
}

/** The project with its effective rules in place of the PR's. */
export function withRules(project: ProjectConfig, rules: ProjectRules): ProjectConfig {
  return { ...project, ...rules };
}

/**
 * What the PR's file changes in the rules compared with the base (in words
 * for the plan comment): those changes take effect once merged, except where
 * they tighten.
 */
export function ruleChanges(base: BaseRules, pr: RepoConfig, planned: ProjectConfig[]): string[] {
  if (!pr.fromFile) return base.state === "file" ? [".plangate.yml removed"] : [];
  const changes: string[] = [];
  for (const project of pr.projectsListed ? planned : []) {
    const { rules: baseOnly } = effectiveRules(base, project, false);
    const keys = RULE_KEYS.filter((key) => !isDeepStrictEqual(normalise(key, project[key]), normalise(key, baseOnly[key])));
    if (keys.length) changes.push(`${keys.join(", ")} of ${project.name}`);
  }
  const basePolicies = base.state === "file" ? (base.config?.policies ?? []) : [];
  if (!isDeepStrictEqual(pr.policies, basePolicies)) changes.push("policies");
  if (!isDeepStrictEqual(pr.defaults ?? {}, (base.state === "file" ? base.config?.defaults : undefined) ?? {})) changes.push("defaults");
  if (!isDeepStrictEqual([...(pr.apply_branches ?? [])].sort(), [...((base.state === "file" ? base.config?.apply_branches : undefined) ?? [])].sort())) changes.push("apply_branches");
  return changes;
}

/**
 * The PR's projects whose rules its `.plangate.yml` changes: they are planned
 * with the PR, so their approvers (under the default branch's rules) must
 * approve the change of their own bar. A change of what every project shares
 * (dropping a policy, other defaults, another apply branch, or removing the
 * file) is a change for
 * all of them. A PR that only edits the config is then no longer neutral.
 */
export function projectsWithRuleChanges(base: BaseRules, pr: RepoConfig): ProjectConfig[] {
  const baseConfig = base.state === "file" ? base.config : undefined;
  // Policies the PR adds only tighten (the base's always apply); dropping or editing one, more apply branches, or other defaults loosen.
  const shared = pr.fromFile
    ? (baseConfig?.policies ?? []).some((b) => !pr.policies.some((p) => isDeepStrictEqual(b, p))) ||
      !isDeepStrictEqual(pr.defaults ?? {}, baseConfig?.defaults ?? {}) ||
      (pr.apply_branches ?? []).some((b) => !(baseConfig?.apply_branches ?? []).includes(b))
    : !!baseConfig;
  if (shared) return pr.projects;
  if (!pr.projectsListed) return [];
  return pr.projects.filter((project) => {
    const { rules: baseOnly } = effectiveRules(base, project, false);
    return RULE_KEYS.some((key) => !isDeepStrictEqual(normalise(key, project[key]), normalise(key, baseOnly[key])));
  });
}

/** Values compared as sets where order carries no meaning. */
function normalise(key: RuleKey, value: unknown): unknown {
  if (key === "env" || key === "depends_on") return [...(value as string[])].sort();
  if (key === "approvals") {
    const a = value as ProjectRules["approvals"];
    return { ...a, teams: [...a.teams].sort(), users: [...a.users].sort() };
  }
  return value;
}
