import picomatch from "picomatch";
import { onPush } from "../../src/handlers/push.js";
import { evaluateApprovals } from "../../src/plans/approval.js";
import { isTouched, projectScope } from "../../src/projects/affected.js";
import { defaultProject } from "../../src/projects/discover.js";
import { realDir } from "../../src/projects/real-dir.js";
import { unplannedProjects } from "../../src/projects/unplanned.js";
import { ENGINES } from "../../src/engines/registry.js";
import { loadRepoConfig } from "../../src/settings/load-repo-config.js";
import type { ProjectConfig, RepoConfig } from "../../src/settings/repo-config.js";
import { effectiveRules, projectsWithRuleChanges, type BaseRules } from "../../src/settings/rules.js";

/** The pure decisions behind the gate's second round (issue 21 rows 3, 4 and 6). */

const configOf = (text: string): RepoConfig => {
  const loaded = loadRepoConfig(text, ENGINES.names);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return loaded.config;
};
const base = (text: string): BaseRules => ({ sha: "b".repeat(40), state: "file", config: configOf(text) });
const project = (over: Partial<ProjectConfig>): ProjectConfig => ({ ...defaultProject(over.dir ?? ".", "terraform"), ...over });

describe("a project dir as written and as it really is", () => {
  test("symlinks are resolved component by component, links to links too", () => {
    const links = new Map([["evil", "infra/network"], ["alias", "evil"], ["infra/n2", "network"]]);
    expect(realDir("evil", links)).toBe("infra/network");
    expect(realDir("./alias/", links)).toBe("infra/network");
    expect(realDir("infra/n2", links)).toBe("infra/network");
    expect(realDir("other", links)).toBe("other");
  });

  test("a link out of the repository, an absolute link or a loop leaves the dir as written", () => {
    expect(realDir("out", new Map([["out", "../../etc"]]))).toBe("out");
    expect(realDir("abs", new Map([["abs", "/etc"]]))).toBe("abs");
    expect(realDir("a", new Map([["a", "b"], ["b", "a"]]))).toBe("a");
  });
});

describe("base rules match by name, or by normalized dir and workspace; the strictest wins", () => {
  const protectedBase = base(`version: 1
projects:
  - name: network
    dir: infra
    approvals: { required: 2, teams: [infra] }
    apply: command
    env: [A, B]
  - name: other-name
    dir: ./infra/
    approvals: { required: 1, users: [lead] }
    apply: both
    env: [B]
`);

  test.each([
    ["./infra/", undefined],
    ["infra/", undefined],
    ["evil", "infra"],
  ])("a PR's project at %s (really %s) gets every matching entry's rules", (dir, real) => {
    const { rules } = effectiveRules(protectedBase, project({ name: "root2", dir, env: ["A", "B"], ...(real ? { real_dir: real } : {}) }), true);
    expect(rules.approvals).toMatchObject({ required: 2, teams: ["infra"] });
    expect(rules.also_approvals).toEqual([{ required: 1, teams: [], users: ["lead"] }]);
    expect(rules.apply).toBe("command");
    expect(rules.env).toEqual(["B"]);
  });

  test("a workspace the base does not list for the dir is held to every entry of the dir", () => {
    const { rules } = effectiveRules(protectedBase, project({ name: "x", dir: "infra", workspace: "staging" }), false);
    expect(rules.approvals).toMatchObject({ required: 2, teams: ["infra"] });
  });

  test("another workspace the base lists for the same dir is another project", () => {
    const withStaging = base(`version: 1
projects:
  - name: network
    dir: infra
    approvals: { required: 2, teams: [infra] }
  - name: network-staging
    dir: infra
    workspace: staging
`);
    const { rules } = effectiveRules(withStaging, project({ name: "x", dir: "infra", workspace: "staging" }), false);
    expect(rules.approvals).toEqual({ required: 1, teams: [], users: [] });
  });

  test("each approval rule must hold: two infra members without the lead are not enough", () => {
    const { rules } = effectiveRules(protectedBase, project({ name: "root2", dir: "./infra" }), false);
    const asRules = [rules.approvals, ...(rules.also_approvals ?? [])].map((a) => ({ project: "root2", required: a.required, teams: a.teams, users: a.users, destroys: false }));
    const sha = "a".repeat(40);
    const reviews = (users: string[]) => users.map((user) => ({ user, state: "APPROVED", commitId: sha, submittedAt: "" }));
    const isMember = (team: string, user: string) => team === "infra" && ["i1", "i2"].includes(user);
    expect(evaluateApprovals({ sha, author: "author", reviews: reviews(["i1", "i2"]), rules: asRules, isMember }).met).toBe(false);
    expect(evaluateApprovals({ sha, author: "author", reviews: reviews(["i1", "i2", "lead"]), rules: asRules, isMember }).met).toBe(true);
  });
});

describe("who made the change never approves it", () => {
  test("pushers and commit authors are excluded, case-insensitively", () => {
    const sha = "a".repeat(40);
    const reviews = ["Bob", "alice"].map((user) => ({ user, state: "APPROVED", commitId: sha, submittedAt: "" }));
    const rules = [{ project: "p", required: 1, teams: [], users: [], destroys: false }];
    expect(evaluateApprovals({ sha, author: "author", excluded: ["bob", "alice"], reviews, rules, isMember: () => false }).met).toBe(false);
    expect(evaluateApprovals({ sha, author: "author", excluded: ["bob"], reviews, rules, isMember: () => false })).toMatchObject({ met: true, approvers: ["alice"] });
  });
});

describe("what a PR touches", () => {
  const projects = [project({ name: "app", dir: "app" }), project({ name: "nested", dir: "app/nested" }), project({ name: "root", dir: "." })];
  const calls = new Map([["app", new Set(["modules/net"])]]);

  test("every file under the dir, its local modules, not a nested project's files", () => {
    expect(projectScope(projects[0]!, calls, projects)).toEqual(["app/**", "modules/net/**", "!app/nested/**"]);
    expect(isTouched(projects[0]!, ["app/user-data.tpl"], calls, projects)).toBe(true);
    expect(isTouched(projects[0]!, ["app/scripts/run.sh"], calls, projects)).toBe(true);
    expect(isTouched(projects[0]!, ["modules/net/main.tf"], calls, projects)).toBe(true);
    expect(isTouched(projects[0]!, ["app/nested/main.tf"], calls, projects)).toBe(false);
    expect(isTouched(projects[2]!, ["README.md"], calls, projects)).toBe(true);
    expect(isTouched(projects[2]!, ["app/main.tf"], calls, projects)).toBe(false);
  });

  test("a dir is taken as it is written, never as a glob: `env[1]` is not touched by a change in `env1`", () => {
    const odd = [project({ name: "bracket", dir: "env[1]" }), project({ name: "star", dir: "svc*" })];
    expect(isTouched(odd[0]!, ["env1/main.tf"], new Map(), odd)).toBe(false);
    expect(isTouched(odd[0]!, ["env[1]/main.tf"], new Map(), odd)).toBe(true);
    expect(isTouched(odd[1]!, ["svc-a/main.tf"], new Map(), odd)).toBe(false);
    expect(isTouched(odd[1]!, ["svc*/main.tf"], new Map(), odd)).toBe(true);
  });

  test("the scope as projectScope's globs state it: the same answer for every project and file of a nested tree with shared modules", () => {
    const dirs = [".", "a", "a/b", "a/b/c", "a/bb", "ab", "modules/m", "modules/m/inner", "x/y", "x/y/z"];
    const tree = dirs.map((dir, i) => project({ name: `p${i}`, dir }));
    const moduleCalls = new Map([["a", new Set(["modules/m"])], ["modules/m", new Set(["x/y/z"])], ["ab", new Set(["a/b/c"])]]);
    const files = ["README.md", ".github/x.yml", "a/main.tf", "a/b/main.tf", "a/b/c/main.tf", "a/bb/x.tf", "ab/main.tf", "a/.hidden/t.tpl", "modules/m/main.tf", "modules/m/inner/main.tf", "x/y/main.tf", "x/y/z/main.tf", "x/other.tf"];
    for (const p of tree) {
      const scope = projectScope(p, moduleCalls, tree);
      const include = picomatch(scope.filter((g) => !g.startsWith("!")), { dot: true });
      const exclude = picomatch(scope.filter((g) => g.startsWith("!")).map((g) => g.slice(1)), { dot: true });
      for (const f of files) expect([p.dir, f, isTouched(p, [f], moduleCalls, tree)]).toEqual([p.dir, f, include(f) && !exclude(f)]);
    }
  });

  test("a changed project with autoplan off, or known only to the default branch, is unplanned", () => {
    const off = project({ name: "app", dir: "app", autoplan: { enabled: false } });
    const head = { projects: [off], moduleCalls: new Map() };
    const baseKnown = { projects: [project({ name: "app", dir: "app" }), project({ name: "legacy", dir: "legacy" })], moduleCalls: new Map() };
    const unplanned = unplannedProjects({ head, base: baseKnown, changed: ["app/main.tf", "legacy/main.tf"], selected: [] });
    expect(unplanned).toEqual([
      { name: "app", dir: "app", workspace: "default", plannable: true },
      { name: "legacy", dir: "legacy", workspace: "default", plannable: false },
    ]);
    expect(unplannedProjects({ head, base: baseKnown, changed: ["app/main.tf"], selected: [off] })).toEqual([]);
    expect(unplannedProjects({ head, base: baseKnown, changed: ["docs/x.md"], selected: [] })).toEqual([]);
  });

  test("a base project the PR renames is matched by dir", () => {
    const head = { projects: [project({ name: "renamed", dir: "./app/" })], moduleCalls: new Map() };
    const baseKnown = { projects: [project({ name: "app", dir: "app" })], moduleCalls: new Map() };
    expect(unplannedProjects({ head, base: baseKnown, changed: ["app/main.tf"], selected: head.projects })).toEqual([]);
  });
});

describe("a PR that changes the rules", () => {
  const text = `version: 1
projects:
  - name: network
    dir: infra
    approvals: { required: 2 }
  - name: app
    dir: app
policies:
  - deny: destroy
apply_branches: [release]
`;
  const names = (pr: string) => projectsWithRuleChanges(base(text), configOf(pr)).map((p) => p.name);

  test("plans the projects whose rule keys it changes, and all of them when it loosens what they share", () => {
    expect(names(text)).toEqual([]);
    expect(names(text.replace("required: 2", "required: 0"))).toEqual(["network"]);
    expect(names(text.replace("  - deny: destroy\n", "  - deny: destroy\n  - deny: create\n"))).toEqual([]);
    expect(names(text.replace("policies:\n  - deny: destroy\n", ""))).toEqual(["network", "app"]);
    expect(names(text.replace("[release]", "[release, weak]"))).toEqual(["network", "app"]);
    expect(names(text.replace("[release]", "[]"))).toEqual([]);
    expect(names(`${text}defaults:\n  approvals: { required: 0 }\n`)).toEqual(["network", "app"]);
  });

  test("removing the file changes every project's rules", () => {
    const removed: RepoConfig = { fromFile: false, projectsListed: false, projects: [project({ name: "infra", dir: "infra" })], policies: [] };
    expect(projectsWithRuleChanges(base(text), removed).map((p) => p.name)).toEqual(["infra"]);
  });
});

describe("push events", () => {
  test("record who pushed to a branch; tags, deletions and senderless events record nothing", () => {
    const event = (ref: string, over: object = {}) => onPush({ ref, repository: { full_name: "o/r" }, sender: { login: "bob" }, ...over });
    expect(event("refs/heads/feature/x").branchPusher).toEqual({ repo: "o/r", branch: "feature/x", login: "bob" });
    expect(event("refs/tags/v1").branchPusher).toBeUndefined();
    expect(event("refs/heads/x", { deleted: true }).branchPusher).toBeUndefined();
    expect(event("refs/heads/x", { sender: undefined }).branchPusher).toBeUndefined();
    expect(event("refs/heads/x").jobs).toEqual([]);
  });
});
