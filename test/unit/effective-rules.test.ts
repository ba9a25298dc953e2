import { defaultProject } from "../../src/projects/discover.js";
import { ENGINES } from "../../src/engines/registry.js";
import { loadRepoConfig } from "../../src/settings/load-repo-config.js";
import type { ProjectConfig, RepoConfig } from "../../src/settings/repo-config.js";
import { BUILT_IN_RULES, effectivePolicies, effectiveRules, ruleChanges, type BaseRules } from "../../src/settings/rules.js";

/** A project's effective rules: the default branch decides, a PR's file may only tighten (DESIGN.md section 2). */

const configOf = (text: string): RepoConfig => {
  const loaded = loadRepoConfig(text, ENGINES.names);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return loaded.config;
};
const SHA = "b".repeat(40);
const base = (text: string): BaseRules => ({ sha: SHA, state: "file", config: configOf(text) });
const project = (over: Partial<ProjectConfig> & { dir: string }): ProjectConfig => ({ ...defaultProject(over.dir, "terraform"), ...over });
const ALL_SOURCES = (source: string) => ({ approvals: source, apply: source, env: source, credentials: source, depends_on: source });

describe("where the rules come from when the PR's file does not list the project", () => {
  const infra = project({ name: "infra", dir: "infra", approvals: { required: 0, teams: [], users: [] }, apply: "command", env: ["SECRET"] });

  test("no file, or a broken one, on the default branch: the built-in rules, whatever the PR's project says", () => {
    for (const state of ["none", "invalid"] as const) {
      const broken: BaseRules = { sha: SHA, state, config: configOf("version: 1\ndefaults:\n  approvals: { required: 0 }\n") };
      expect(effectiveRules(broken, infra, false)).toEqual({ rules: BUILT_IN_RULES, sources: ALL_SOURCES("built-in") });
    }
  });

  test("a project the default branch does not list gets its defaults, key by key, and the built-in rule for the rest", () => {
    const withDefaults = base("version: 1\nprojects:\n  - name: other\n    dir: other\ndefaults:\n  approvals: { required: 3, teams: [sre] }\n  env: [AWS_REGION]\n");
    expect(effectiveRules(withDefaults, infra, false)).toEqual({
      rules: { approvals: { required: 3, teams: ["sre"], users: [] }, apply: "on_merge", env: ["AWS_REGION"], depends_on: [] },
      sources: { approvals: "base defaults", apply: "built-in", env: "base defaults", credentials: "built-in", depends_on: "built-in" },
    });
  });

  test("a default branch file without a project list (discovery) gives every project its defaults", () => {
    const discovery = base("version: 1\ndefaults:\n  apply: both\n");
    expect(effectiveRules(discovery, infra, false).rules.apply).toBe("both");
  });

  test("a listed project's own entry wins over the defaults, for every key", () => {
    const listed = base("version: 1\nprojects:\n  - name: infra\n    dir: infra\n    apply: both\ndefaults:\n  approvals: { required: 5 }\n  apply: command\n");
    expect(effectiveRules(listed, infra, false)).toEqual({
      rules: { approvals: { required: 1, teams: [], users: [] }, apply: "both", env: [], depends_on: [] },
      sources: ALL_SOURCES("base"),
    });
  });
});

describe("several default-branch entries for one project: the strictest of them", () => {
  const twoEntries = base(`version: 1
projects:
  - name: infra
    dir: infra
    approvals: { required: 1, destroy_required: 3 }
    depends_on: [network]
    apply: both
  - name: infra-alias
    dir: ./infra
    approvals: { required: 2 }
    depends_on: [dns]
    apply: on_merge
  - name: network
    dir: network
  - name: dns
    dir: dns
`);

  test("every dependency, the narrowest apply, and an approval rule that asks for more on destroy kept beside the larger one", () => {
    const { rules } = effectiveRules(twoEntries, project({ name: "infra", dir: "infra" }), false);
    expect(rules.depends_on.sort()).toEqual(["dns", "network"]);
    expect(rules.apply).toBe("on_merge");
    expect(rules.approvals).toEqual({ required: 2, teams: [], users: [] });
    expect(rules.also_approvals).toEqual([{ required: 1, teams: [], users: [], destroy_required: 3 }]);
  });
});

describe("the PR's own file may only tighten the rules of the projects it lists", () => {
  const strict = base(`version: 1
projects:
  - name: infra
    dir: infra
    approvals: { required: 2, teams: [infra], destroy_required: 3 }
    apply: both
    env: [AWS_REGION, TF_VAR_x]
    depends_on: [network]
  - name: network
    dir: network
`);

  test("lower counts, other approvers, another apply mode, more env and fewer dependencies are ignored", () => {
    const loosened = project({
      name: "infra",
      dir: "infra",
      approvals: { required: 0, teams: [], users: ["friend"], destroy_required: 0 },
      apply: "both",
      env: ["AWS_REGION", "TF_VAR_x", "AWS_SECRET_ACCESS_KEY"],
      depends_on: [],
    });
    expect(effectiveRules(strict, loosened, true)).toEqual({
      rules: { approvals: { required: 2, teams: ["infra"], users: [], destroy_required: 3 }, apply: "both", env: ["AWS_REGION", "TF_VAR_x"], depends_on: ["network"] },
      sources: ALL_SOURCES("base"),
    });
  });

  test("higher counts, a narrower apply, fewer env names and more dependencies take effect, shown as the PR's", () => {
    const tightened = project({ name: "infra", dir: "infra", approvals: { required: 4, teams: [], users: [], destroy_required: 5 }, apply: "command", env: ["AWS_REGION"], depends_on: ["dns"] });
    expect(effectiveRules(strict, tightened, true)).toEqual({
      rules: { approvals: { required: 4, teams: ["infra"], users: [], destroy_required: 5 }, apply: "command", env: ["AWS_REGION"], depends_on: ["network", "dns"] },
      sources: { ...ALL_SOURCES("pull request"), credentials: "base" },
    });
  });

  test("credentials are only ever the base's: a PR that names another role, or drops them, changes nothing until merged", () => {
    const withRoles = base(`version: 1
projects:
  - name: infra
    dir: infra
    credentials:
      aws: { plan_role_arn: "arn:aws:iam::123456789012:role/plan", apply_role_arn: "arn:aws:iam::123456789012:role/apply" }
`);
    const baseRoles = { aws: { plan_role_arn: "arn:aws:iam::123456789012:role/plan", apply_role_arn: "arn:aws:iam::123456789012:role/apply", audience: "sts.amazonaws.com" } };
    const other = project({ name: "infra", dir: "infra", credentials: { aws: { role_arn: "arn:aws:iam::999999999999:role/admin", audience: "sts.amazonaws.com" } } });
    expect(effectiveRules(withRoles, other, true)).toMatchObject({ rules: { credentials: baseRoles }, sources: { credentials: "base" } });
    expect(effectiveRules(withRoles, project({ name: "infra", dir: "infra" }), true).rules.credentials).toEqual(baseRoles);
    // A project the base does not list: the base's defaults, never the PR's own.
    const defaults = base("version: 1\ndefaults:\n  credentials:\n    tokens: [{ audience: vault.example.com }]\n");
    expect(effectiveRules(defaults, other, true)).toMatchObject({ rules: { credentials: { tokens: [{ audience: "vault.example.com" }] } }, sources: { credentials: "base defaults" } });
    expect(effectiveRules(base("version: 1\n"), other, true).rules.credentials).toBeUndefined();
  });

  test("an apply mode the base does not allow at all leaves the base's", () => {
    const onMerge = base("version: 1\nprojects:\n  - name: infra\n    dir: infra\n    apply: on_merge\n");
    expect(effectiveRules(onMerge, project({ name: "infra", dir: "infra", apply: "command" }), true).rules.apply).toBe("on_merge");
  });

  test("approvers may be restricted by the PR only where the base names none", () => {
    const open = base("version: 1\nprojects:\n  - name: infra\n    dir: infra\n");
    const { rules, sources } = effectiveRules(open, project({ name: "infra", dir: "infra", approvals: { required: 1, teams: ["sre"], users: [] } }), true);
    expect(rules.approvals).toEqual({ required: 1, teams: ["sre"], users: [] });
    expect(sources.approvals).toBe("pull request");
  });

  test("not listed by the PR's file: its values are not read at all", () => {
    const tightened = project({ name: "infra", dir: "infra", approvals: { required: 9, teams: [], users: [] } });
    expect(effectiveRules(strict, tightened, false).rules.approvals.required).toBe(2);
  });
});

describe("policies", () => {
  const baseText = "version: 1\npolicies:\n  - deny: destroy\n";

  test("the default branch's always apply; a PR adds its own, never removes, and a repeated one counts once", () => {
    const pr = configOf("version: 1\npolicies:\n  - deny: destroy\n  - deny: create\n");
    expect(effectivePolicies(base(baseText), pr)).toEqual([...configOf(baseText).policies, configOf("version: 1\npolicies:\n  - deny: create\n").policies[0]]);
    expect(effectivePolicies(base(baseText), configOf("version: 1\n"))).toEqual(configOf(baseText).policies);
  });

  test("a PR without a file adds none; a broken default-branch file contributes none", () => {
    expect(effectivePolicies(base(baseText), { fromFile: false, projectsListed: false, projects: [], policies: [] })).toEqual(configOf(baseText).policies);
    expect(effectivePolicies({ sha: SHA, state: "invalid", config: configOf(baseText) }, configOf("version: 1\n"))).toEqual([]);
  });
});

describe("what the plan comment says the PR's file changes in the rules", () => {
  const text = "version: 1\nprojects:\n  - name: infra\n    dir: infra\n    approvals: { required: 2 }\npolicies:\n  - deny: destroy\n";
  const pr = (t: string) => configOf(t);
  const planned = (config: RepoConfig) => config.projects;

  test("each changed key of each planned project, then what every project shares", () => {
    expect(ruleChanges(base(text), pr(text), planned(pr(text)))).toEqual([]);
    const changed = text.replace("required: 2 }", "required: 1 }\n    env: [AWS_REGION]").replace("policies:\n  - deny: destroy\n", "defaults:\n  apply: both\napply_branches: [release]\n");
    expect(ruleChanges(base(text), pr(changed), planned(pr(changed)))).toEqual(["approvals, env of infra", "policies", "defaults", "apply_branches"]);
  });

  test("removing the file is one change; no file on either side is none", () => {
    const removed: RepoConfig = { fromFile: false, projectsListed: false, projects: [], policies: [] };
    expect(ruleChanges(base(text), removed, [])).toEqual([".plangate.yml removed"]);
    expect(ruleChanges({ sha: SHA, state: "none" }, removed, [])).toEqual([]);
  });
});
