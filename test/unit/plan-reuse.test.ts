import { mayReuse, type EarlierPlan } from "../../src/projects/reuse.js";
import type { ProjectConfig } from "../../src/settings/repo-config.js";
import type { ProjectRules } from "../../src/settings/rules.js";

const project = (name: string, dir: string) => ({ name, dir, workspace: "default", engine: "terraform", autoplan: { enabled: true }, apply: "on_merge", depends_on: [], approvals: { required: 1, teams: [], users: [] }, env: [] }) as unknown as ProjectConfig;
const rules = { approvals: { required: 1, teams: [], users: [] }, apply: "on_merge", env: [], depends_on: [] } as unknown as ProjectRules;
const b = project("b", "b");
const all = [project("a", "a"), b];
const calls = new Map([["b", new Set(["modules/m"])]]);
const planned = new Date("2026-12-05T10:00:00Z");
const earlier = (over: Partial<EarlierPlan> = {}): EarlierPlan => ({ sha: "1".repeat(40), config: b, rules, finished_at: planned, last_applied: null, ...over });
const decide = (over: Partial<Parameters<typeof mayReuse>[0]> = {}) => mayReuse({ project: b, rules, earlier: earlier(), changed: ["a/main.tf"], samePolicies: true, moduleCalls: calls, projects: all, ...over });

describe("whether a push keeps a project's earlier plan", () => {
  test("kept when nothing of the project changed since", () => expect(decide()).toBe(true));
  test("planned again when its dir or a module it calls changed", () => {
    expect(decide({ changed: ["b/variables.tf"] })).toBe(false);
    expect(decide({ changed: ["modules/m/main.tf"] })).toBe(false);
  });
  test("planned again when the changes are unknown (the earlier commit is gone), or there is no earlier plan", () => {
    expect(decide({ changed: undefined })).toBe(false);
    expect(decide({ earlier: undefined })).toBe(false);
  });
  test("planned again after an apply to the project, or when its config, rules or the policies changed", () => {
    expect(decide({ earlier: earlier({ last_applied: new Date(planned.getTime() + 1) }) })).toBe(false);
    expect(decide({ earlier: earlier({ last_applied: new Date(planned.getTime() - 1) }) })).toBe(true);
    expect(decide({ rules: { ...rules, env: ["TF_VAR_x"] } as ProjectRules })).toBe(false);
    expect(decide({ project: { ...b, workspace: "default", stacks: ["x"] } as ProjectConfig })).toBe(false);
    expect(decide({ samePolicies: false })).toBe(false);
  });
});
