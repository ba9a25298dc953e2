import { countChanges, type PlanChanges, type ResourceChange } from "../../src/plans/changes.js";
import { evaluatePolicies, type PolicyViolation } from "../../src/plans/policy.js";
import { policyViolationText } from "../../src/render/policy-text.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";

let t: Templates;
beforeAll(async () => {
  t = await loadTemplates();
});
/** Each violation as a reviewer reads it (templates/policy-violation.hbs), with what it refused. */
const read = (violations: PolicyViolation[]) => violations.map((v) => ({ text: policyViolationText(t, v), addresses: v.addresses }));

const change = (address: string, action: ResourceChange["action"], type = address.split(".")[0]!): ResourceChange => ({ address, type, action, actions: [], before: null, after: null });
const plan = (...resources: ResourceChange[]): PlanChanges => ({ resources, counts: countChanges(resources) });

describe("policies", () => {
  const p = plan(change("aws_db_instance.main", "delete"), change("aws_s3_bucket.logs", "create"), change("aws_iam_role.ci", "replace"), change("data.x.y", "read"));

  test("deny an action, limited by resource type globs", () => {
    expect(read(evaluatePolicies([{ deny: "destroy", resource_types: ["aws_db_*"] }], p).violations)).toEqual([
      { text: "policy 1 denies destroy of types aws_db_*", addresses: ["aws_db_instance.main"] },
    ]);
    expect(evaluatePolicies([{ deny: "destroy", resource_types: ["aws_s3_*"] }], p).violations).toEqual([]);
  });

  test("deny: destroy also refuses a replace, which destroys the old object", () => {
    const replaced = plan(change("aws_db_instance.main", "replace"), change("aws_s3_bucket.logs", "update"));
    expect(read(evaluatePolicies([{ deny: "destroy", resource_types: ["aws_db_*"] }], replaced).violations)).toEqual([
      { text: "policy 1 denies destroy of types aws_db_*", addresses: ["aws_db_instance.main"] },
    ]);
    expect(evaluatePolicies([{ deny: "destroy" }], p).violations[0]!.addresses).toEqual(["aws_db_instance.main", "aws_iam_role.ci"]);
  });

  test("deny: replace does not refuse a plain destroy", () => {
    expect(evaluatePolicies([{ deny: "replace" }], p).violations[0]!.addresses).toEqual(["aws_iam_role.ci"]);
  });

  test("deny several actions, limited by address globs", () => {
    const result = evaluatePolicies([{ deny: ["create", "replace"], addresses: ["aws_iam_role.*", "module.*.x"] }], p);
    expect(result.violations.map((v) => v.addresses)).toEqual([["aws_iam_role.ci"]]);
    expect(policyViolationText(t, result.violations[0]!)).toBe("policy 1 denies create/replace of addresses aws_iam_role.*, module.*.x");
  });

  test("max_changes counts creates, updates, replaces and destroys, not reads", () => {
    expect(evaluatePolicies([{ max_changes: 3 }], p).violations).toEqual([]);
    expect(read(evaluatePolicies([{ max_changes: 2 }], p).violations)).toEqual([{ text: "policy 1 allows at most 2 changes; this plan has 3", addresses: [] }]);
  });

  test("a policy limited by both types and addresses names both; the second policy is policy 2", () => {
    const both = evaluatePolicies([{ max_changes: 10 }, { deny: "create", resource_types: ["aws_s3_*", "aws_sqs_*"], addresses: ["aws_s3_bucket.*"] }], p);
    expect(read(both.violations)).toEqual([{ text: "policy 2 denies create of types aws_s3_*, aws_sqs_*, addresses aws_s3_bucket.*", addresses: ["aws_s3_bucket.logs"] }]);
  });

  test("a violation stored before the wording moved to the template keeps its own sentence", () => {
    const stored = { policy: 0, rule: "deny", message: "policy 1 denies destroy of types aws_db_*", addresses: ["aws_db_instance.main"] } as PolicyViolation;
    expect(policyViolationText(t, stored)).toBe("policy 1 denies destroy of types aws_db_*");
  });

  test("require_approvals raises the requirement only when a matching change exists", () => {
    expect(evaluatePolicies([{ require_approvals: 2, resource_types: ["aws_iam_*"] }, { require_approvals: 3, resource_types: ["google_*"] }], p)).toEqual({ violations: [], requiredApprovals: 2 });
    expect(evaluatePolicies([{ require_approvals: 2 }], plan(change("data.x.y", "read"))).requiredApprovals).toBe(0);
  });
});
