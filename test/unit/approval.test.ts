import { approvalsOn, evaluateApprovals, type ApprovalRule } from "../../src/plans/approval.js";

const SHA = "a".repeat(40);
const OLD = "b".repeat(40);
const review = (user: string, state: string, commitId = SHA) => ({ user, state, commitId, submittedAt: "" });
const rule = (over: Partial<ApprovalRule> = {}): ApprovalRule => ({ project: "p", required: 1, teams: [], users: [], destroys: false, ...over });
const evaluate = (reviews: ReturnType<typeof review>[], rules: ApprovalRule[], members: Record<string, string[]> = {}) =>
  evaluateApprovals({ sha: SHA, author: "author", reviews, rules, isMember: (t, u) => members[t]?.includes(u) ?? false });

describe("approvals", () => {
  test("only approvals of the planned commit count", () => {
    expect(approvalsOn([review("r1", "APPROVED", OLD), review("r2", "APPROVED")], SHA)).toEqual(["r2"]);
    expect(evaluate([review("r1", "APPROVED", OLD)], [rule()])).toMatchObject({ met: false, missing: [{ project: "p", needed: 1, have: 0 }] });
  });

  test("a later change request or dismissal withdraws an approval; a comment does not", () => {
    expect(approvalsOn([review("r", "APPROVED"), review("r", "COMMENTED")], SHA)).toEqual(["r"]);
    expect(approvalsOn([review("r", "APPROVED"), review("r", "CHANGES_REQUESTED")], SHA)).toEqual([]);
    expect(approvalsOn([review("r", "APPROVED"), review("r", "DISMISSED")], SHA)).toEqual([]);
  });

  test("the author never counts", () => {
    expect(evaluate([review("author", "APPROVED")], [rule()]).met).toBe(false);
    expect(evaluate([review("Author", "APPROVED"), review("r", "APPROVED")], [rule()])).toMatchObject({ met: true, approvers: ["r"] });
  });

  test("teams and users restrict who counts", () => {
    const rules = [rule({ teams: ["infra"], users: ["lead"] })];
    expect(evaluate([review("outsider", "APPROVED")], rules, { infra: ["member"] })).toMatchObject({ met: false, missing: [{ from: ["team infra", "@lead"] }] });
    expect(evaluate([review("member", "APPROVED")], rules, { infra: ["member"] }).met).toBe(true);
    expect(evaluate([review("lead", "APPROVED")], rules).met).toBe(true);
  });

  test("destroy_required applies when the plan destroys or replaces", () => {
    const rules = [rule({ destroyRequired: 2, destroys: true })];
    expect(evaluate([review("r1", "APPROVED")], rules)).toMatchObject({ met: false, missing: [{ needed: 2, have: 1 }] });
    expect(evaluate([review("r1", "APPROVED"), review("r2", "APPROVED")], rules).met).toBe(true);
    expect(evaluate([review("r1", "APPROVED")], [rule({ destroyRequired: 2, destroys: false })]).met).toBe(true);
  });

  test("every project's rule must hold; a policy can raise the requirement", () => {
    const rules = [rule({ project: "a" }), rule({ project: "b", policyRequired: 2 })];
    expect(evaluate([review("r1", "APPROVED")], rules)).toMatchObject({ met: false, missing: [{ project: "b", needed: 2, have: 1 }] });
    expect(evaluate([], [rule({ required: 0 })]).met).toBe(true);
  });
});
