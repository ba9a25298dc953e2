import { approvalsOn, evaluateApprovals, type ApprovalRule } from "../../src/plans/approval.js";
import { defaultProject } from "../../src/projects/discover.js";
import { ENGINES } from "../../src/engines/registry.js";
import { loadRepoConfig } from "../../src/settings/load-repo-config.js";
import { effectiveRules, type BaseRules } from "../../src/settings/rules.js";

/** Approval decisions approval.test.ts leaves out: pending reviews, who counts where, destroy and policy counts together. */

const SHA = "a".repeat(40);
const review = (user: string, state: string, commitId = SHA) => ({ user, state, commitId, submittedAt: "" });
const rule = (over: Partial<ApprovalRule> = {}): ApprovalRule => ({ project: "p", required: 1, teams: [], users: [], destroys: false, ...over });
const evaluate = (reviews: ReturnType<typeof review>[], rules: ApprovalRule[], members: Record<string, string[]> = {}) =>
  evaluateApprovals({ sha: SHA, author: "author", reviews, rules, isMember: (t, u) => members[t]?.includes(u) ?? false });
const approved = (...users: string[]) => users.map((u) => review(u, "APPROVED"));

describe("approvals", () => {
  test("a pending review neither approves nor withdraws an approval", () => {
    expect(approvalsOn([review("r", "APPROVED"), review("r", "PENDING")], SHA)).toEqual(["r"]);
    expect(approvalsOn([review("r", "PENDING")], SHA)).toEqual([]);
  });

  test("an approval of an older commit after one of the planned commit withdraws it", () => {
    expect(approvalsOn([review("r", "APPROVED"), review("r", "APPROVED", "b".repeat(40))], SHA)).toEqual([]);
  });

  test("an approver counts toward every project whose rule admits them; approvers lists only those who counted somewhere", () => {
    const rules = [rule({ project: "net", teams: ["infra"] }), rule({ project: "app" })];
    const result = evaluate(approved("member", "outsider"), rules, { infra: ["member"] });
    expect(result).toEqual({ met: true, approvers: ["member", "outsider"], missing: [] });
    expect(evaluate(approved("outsider"), [rule({ project: "net", teams: ["infra"] })], { infra: ["member"] })).toEqual({
      met: false,
      approvers: [],
      missing: [{ project: "net", needed: 1, have: 0, from: ["team infra"] }],
    });
  });

  test("every shortfall is listed, one per rule, with whom it needs", () => {
    const rules = [rule({ project: "a", required: 2 }), rule({ project: "b", users: ["lead"] }), rule({ project: "c" })];
    expect(evaluate(approved("r1"), rules).missing).toEqual([
      { project: "a", needed: 2, have: 1, from: [] },
      { project: "b", needed: 1, have: 0, from: ["@lead"] },
    ]);
  });

  test("a policy's required approvals and destroy_required: the larger one applies", () => {
    const destroying = rule({ destroyRequired: 2, destroys: true, policyRequired: 3 });
    expect(evaluate(approved("r1", "r2"), [destroying])).toMatchObject({ met: false, missing: [{ needed: 3, have: 2 }] });
    expect(evaluate(approved("r1", "r2", "r3"), [destroying]).met).toBe(true);
  });

  test("destroy_required never asks for fewer approvals than required: a destroy needs at least as many as any change", () => {
    expect(evaluate(approved("r1"), [rule({ required: 2, destroyRequired: 1, destroys: true })])).toMatchObject({ met: false, missing: [{ needed: 2, have: 1 }] });
    expect(evaluate(approved("r1", "r2"), [rule({ required: 2, destroyRequired: 1, destroys: true })]).met).toBe(true);
  });

  test("a PR's own file cannot lower the bar for destroys by adding a small destroy_required", () => {
    const loaded = loadRepoConfig("version: 1\nprojects:\n  - name: db\n    dir: db\n    approvals: { required: 2 }\n", ENGINES.names);
    if (!loaded.ok) throw new Error("the base config is valid");
    const base: BaseRules = { sha: "b".repeat(40), state: "file", config: loaded.config };
    const pr = { ...defaultProject("db", "terraform"), name: "db", approvals: { required: 2, teams: [], users: [], destroy_required: 1 } };
    const { approvals } = effectiveRules(base, pr, true).rules;
    const asRule = rule({ project: "db", required: approvals.required, destroyRequired: approvals.destroy_required, destroys: true });
    expect(evaluate(approved("r1"), [asRule]).met).toBe(false);
  });
});
