import { countChanges, type PlanChanges, type ResourceChange } from "../../src/plans/changes.js";
import { evaluatePolicies } from "../../src/plans/policy.js";

const change = (address: string, action: ResourceChange["action"], type = address.split(".")[0]!): ResourceChange => ({ address, type, action, actions: [], before: null, after: null });
const plan = (...resources: ResourceChange[]): PlanChanges => ({ resources, counts: countChanges(resources) });

describe("policies", () => {
  const p = plan(change("aws_db_instance.main", "delete"), change("aws_s3_bucket.logs", "create"), change("aws_iam_role.ci", "replace"), change("data.x.y", "read"));

  test("deny an action, limited by resource type globs", () => {
    expect(evaluatePolicies([{ deny: "destroy", resource_types: ["aws_db_*"] }], p).violations).toEqual([
      { policy: 0, rule: "deny", message: "policy 1 denies destroy of types aws_db_*", addresses: ["aws_db_instance.main"] },
    ]);
    expect(evaluatePolicies([{ deny: "destroy", resource_types: ["aws_s3_*"] }], p).violations).toEqual([]);
  });

  test("deny: destroy also refuses a replace, which destroys the old object", () => {
    const replaced = plan(change("aws_db_instance.main", "replace"), change("aws_s3_bucket.logs", "update"));
    expect(evaluatePolicies([{ deny: "destroy", resource_types: ["aws_db_*"] }], replaced).violations).toEqual([
      { policy: 0, rule: "deny", message: "policy 1 denies destroy of types aws_db_*", addresses: ["aws_db_instance.main"] },
    ]);
    expect(evaluatePolicies([{ deny: "destroy" }], p).violations[0]!.addresses).toEqual(["aws_db_instance.main", "aws_iam_role.ci"]);
  });

  test("deny: replace does not refuse a plain destroy", () => {
    expect(evaluatePolicies([{ deny: "replace" }], p).violations[0]!.addresses).toEqual(["aws_iam_role.ci"]);
  });

  test("deny several actions, limited by address globs", () => {
    const result = evaluatePolicies([{ deny: ["create", "replace"], addresses: ["aws_iam_role.*", "module.*.x"] }], p);
    expect(result.violations.map((v) => v.addresses)).toEqual([["aws_iam_role.ci"]]);
    expect(result.violations[0]!.message).toBe("policy 1 denies create/replace of addresses aws_iam_role.*, module.*.x");
  });

  test("max_changes counts creates, updates, replaces and destroys, not reads", () => {
    expect(evaluatePolicies([{ max_changes: 3 }], p).violations).toEqual([]);
    expect(evaluatePolicies([{ max_changes: 2 }], p).violations).toEqual([
      { policy: 0, rule: "max_changes", message: "policy 1 allows at most 2 changes; this plan has 3", addresses: [] },
    ]);
  });

  test("require_approvals raises the requirement only when a matching change exists", () => {
    expect(evaluatePolicies([{ require_approvals: 2, resource_types: ["aws_iam_*"] }, { require_approvals: 3, resource_types: ["google_*"] }], p)).toEqual({ violations: [], requiredApprovals: 2 });
    expect(evaluatePolicies([{ require_approvals: 2 }], plan(change("data.x.y", "read"))).requiredApprovals).toBe(0);
  });
});
