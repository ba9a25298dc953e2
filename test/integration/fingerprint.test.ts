import { changeFingerprint } from "../../src/plans/fingerprint.js";
import { engineTest } from "../support/app-harness.js";
import { realPlanJson } from "../support/terraform-plans.js";

const config = (input: string, secret = "s3cret") => `
variable "secret" {
  type      = string
  sensitive = true
  default   = "${secret}"
}
resource "terraform_data" "a" { input = "${input}" }
resource "terraform_data" "b" { input = var.secret }
resource "terraform_data" "c" { input = terraform_data.a.output }
`;

describe("change fingerprint", () => {
  engineTest("two plans of the same change agree; any changed value, secrets included, disagrees", () => {
    const first = changeFingerprint(realPlanJson(config("x")));
    const again = changeFingerprint(realPlanJson(config("x")));
    expect(again).toBe(first);
    expect(changeFingerprint(realPlanJson(config("y")))).not.toBe(first);
    expect(changeFingerprint(realPlanJson(config("x", "other-secret")))).not.toBe(first);
  });

  engineTest('a map key named "__proto__" is content like any other: changing its value changes the fingerprint', () => {
    // A PR author's map key that a plain JavaScript object would swallow as its prototype.
    const keyed = (value: string) => `resource "terraform_data" "m" {\n  input = { "__proto__" = "${value}", other = "same" }\n}\n`;
    const first = changeFingerprint(realPlanJson(keyed("reviewed")));
    expect(changeFingerprint(realPlanJson(keyed("reviewed")))).toBe(first);
    expect(changeFingerprint(realPlanJson(keyed("swapped")))).not.toBe(first);
  });

  test("independent of resource order and of plan metadata", () => {
    const rc = (address: string, input: string) => ({ address, type: "terraform_data", change: { actions: ["create"], after: { input }, after_unknown: { id: true }, after_sensitive: {} } });
    const one = { timestamp: "2026-01-01T00:00:00Z", resource_changes: [rc("a", "1"), rc("b", "2")] };
    const two = { timestamp: "2026-02-02T00:00:00Z", run: 42, resource_changes: [rc("b", "2"), rc("a", "1")] };
    expect(changeFingerprint(two)).toBe(changeFingerprint(one));
    expect(changeFingerprint({ resource_changes: [rc("a", "1"), rc("b", "3")] })).not.toBe(changeFingerprint(one));
  });

  test("no-ops do not count; the sensitive value itself never appears", () => {
    const noop = { address: "n", change: { actions: ["no-op"], after: { x: 1 } } };
    const secret = { address: "s", change: { actions: ["update"], after: { password: "hunter2" }, after_sensitive: { password: true } } };
    expect(changeFingerprint({ resource_changes: [noop, secret] })).toBe(changeFingerprint({ resource_changes: [secret] }));
  });
});
