import type { Selector } from "../../src/commands/parse-command.js";
import { isAffected, selectProjects, watchPatterns } from "../../src/projects/affected.js";
import { defaultProject } from "../../src/projects/discover.js";
import { unplannedProjects } from "../../src/projects/unplanned.js";
import type { ProjectConfig } from "../../src/settings/repo-config.js";

/** Which projects a push or a /plan plans, and which changed ones are left unplanned (pure: file lists in, projects out). */

const project = (over: Partial<ProjectConfig> & { dir: string }): ProjectConfig => ({ ...defaultProject(over.dir, "terraform"), ...over });
const names = (projects: ProjectConfig[]) => projects.map((p) => `${p.name}:${p.workspace}`);
const NO_MODULES = new Map<string, Set<string>>();

const app = project({ name: "app", dir: "app" });
const appStaging = project({ name: "app-staging", dir: "app", workspace: "staging" });
const net = project({ name: "net", dir: "infra/net" });
const manual = project({ name: "manual", dir: "manual", autoplan: { enabled: false } });
const ALL = [app, appStaging, net, manual];

describe("autoplan: the projects a push plans", () => {
  const autoplan = (changed: string[], projects = ALL, calls = NO_MODULES) => names(selectProjects(projects, changed, calls, { mode: "autoplan" }));

  test("every workspace of a changed dir; untouched projects and projects with autoplan off are left out", () => {
    expect(autoplan(["app/main.tf", "manual/main.tf"])).toEqual(["app:default", "app-staging:staging"]);
    expect(autoplan(["README.md", "docs/infra/net.md"])).toEqual([]);
  });

  test("any file of the dir counts, dot files and lock files included", () => {
    expect(autoplan(["infra/net/.terraform.lock.hcl"])).toEqual(["net:default"]);
    expect(autoplan(["infra/net/templates/user-data.sh.tpl"])).toEqual(["net:default"]);
  });

  test("a change in a local module plans every project that calls it, directly or through another module", () => {
    const calls = new Map([["app", new Set(["modules/web"])], ["modules/web", new Set(["modules/base"])]]);
    expect(autoplan(["modules/base/variables.tf"], [app, net], calls)).toEqual(["app:default"]);
  });

  test("when_modified globs are relative to the dir, may reach outside it, and may exclude", () => {
    const watched = project({ name: "w", dir: "svc", autoplan: { enabled: true, when_modified: ["*.tf", "../shared/**", "!old.tf"] } });
    expect(watchPatterns(watched, NO_MODULES)).toEqual(["svc/*.tf", "shared/**", "!svc/old.tf"]);
    expect(isAffected(watched, ["svc/main.tf"], NO_MODULES)).toBe(true);
    expect(isAffected(watched, ["shared/policy.json"], NO_MODULES)).toBe(true);
    // Only what the globs name: not other files of the dir, not an excluded one.
    expect(isAffected(watched, ["svc/README.md"], NO_MODULES)).toBe(false);
    expect(isAffected(watched, ["svc/old.tf"], NO_MODULES)).toBe(false);
  });

  test("the root project's files are everything but other projects' dirs", () => {
    const root = project({ name: "root", dir: "." });
    expect(autoplan(["main.tf"], [root, app])).toEqual(["root:default"]);
    expect(autoplan(["app/main.tf"], [root, app])).toEqual(["app:default"]);
  });
});

describe("/plan: the selector decides", () => {
  const command = (changed: string[], selector: Partial<Selector>) => names(selectProjects(ALL, changed, NO_MODULES, { mode: "command", selector: { all: false, ...selector } }));

  test("without flags: the changed projects, autoplan off or not", () => {
    expect(command(["manual/main.tf", "infra/net/main.tf"], {})).toEqual(["net:default", "manual:default"]);
  });

  test("--all: every project, changed or not", () => {
    expect(command([], { all: true })).toEqual(names(ALL));
  });

  test("-p NAME and -d DIR plan the named project whether changed or not; -d matches every workspace of the dir", () => {
    expect(command([], { project: "net" })).toEqual(["net:default"]);
    expect(command([], { dir: "./app/" })).toEqual(["app:default", "app-staging:staging"]);
    expect(command([], { project: "nope" })).toEqual([]);
  });

  test("-w narrows: alone, to the changed projects in that workspace; with -d, to that dir's workspace", () => {
    expect(command(["app/main.tf", "infra/net/main.tf"], { workspace: "staging" })).toEqual(["app-staging:staging"]);
    expect(command([], { dir: "app", workspace: "staging" })).toEqual(["app-staging:staging"]);
    expect(command([], { workspace: "staging", all: true })).toEqual(["app-staging:staging"]);
  });
});

describe("unplanned: changed projects the plan leaves out", () => {
  const known = (projects: ProjectConfig[]) => ({ projects, moduleCalls: NO_MODULES });

  test("a project planned in one workspace counts as planned for a base project of the same dir", () => {
    const base = known([project({ name: "app", dir: "app" })]);
    expect(unplannedProjects({ head: known([appStaging]), base, changed: ["app/main.tf"], selected: [appStaging] })).toEqual([]);
  });

  test("a base project the PR's config still has under another name is named as the PR names it, and listed once", () => {
    const head = known([project({ name: "renamed", dir: "app" })]);
    const base = known([project({ name: "app", dir: "./app" })]);
    expect(unplannedProjects({ head, base, changed: ["app/main.tf"], selected: [] })).toEqual([{ name: "renamed", dir: "app", workspace: "default", plannable: true }]);
  });

  test("a base project whose symlinked dir is the PR's project's dir is the same project", () => {
    const head = known([project({ name: "linked", dir: "alias", real_dir: "app" })]);
    const base = known([project({ name: "app", dir: "app" })]);
    expect(unplannedProjects({ head, base, changed: ["app/main.tf"], selected: head.projects })).toEqual([]);
  });

  test("a change inside a base project's local module leaves that project unplanned", () => {
    const base = { projects: [project({ name: "legacy", dir: "legacy" })], moduleCalls: new Map([["legacy", new Set(["modules/db"])]]) };
    expect(unplannedProjects({ head: known([]), base, changed: ["modules/db/main.tf"], selected: [] })).toEqual([{ name: "legacy", dir: "legacy", workspace: "default", plannable: false }]);
  });

  test("listed in name order", () => {
    const head = known([project({ name: "zeta", dir: "zeta" }), project({ name: "alpha", dir: "alpha" })]);
    expect(unplannedProjects({ head, base: known([]), changed: ["zeta/a.tf", "alpha/a.tf"], selected: [] }).map((u) => u.name)).toEqual(["alpha", "zeta"]);
  });
});
