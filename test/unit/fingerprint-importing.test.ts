import { canonicalJson, sha256Hex } from "../../src/plans/canonical.js";
import { parsePlanChanges } from "../../src/plans/changes.js";
import { changeFingerprint } from "../../src/plans/fingerprint.js";
import { renderPlanComment } from "../../src/render/plan-comment.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";

let t: Templates;
beforeAll(async () => {
  t = await loadTemplates();
});

/** `terraform show -json` of an import block importing terraform_data.adopted, as terraform 1.11 writes it. */
const importPlan = (importId: string, actions = ["no-op"], input: string | null = null) => ({
  format_version: "1.2",
  resource_changes: [
    {
      address: "terraform_data.adopted",
      mode: "managed",
      type: "terraform_data",
      name: "adopted",
      change: {
        actions,
        before: { id: "same-state", input: null, output: null, triggers_replace: null },
        after: { id: "same-state", input, output: null, triggers_replace: null },
        after_unknown: {},
        before_sensitive: {},
        after_sensitive: {},
        importing: { id: importId },
      },
    },
  ],
});

describe("the change fingerprint covers what an import block imports", () => {
  test("two plans differing only in importing.id have different fingerprints; the same id agrees", () => {
    expect(changeFingerprint(importPlan("id-A"), undefined)).toBe(changeFingerprint(importPlan("id-A"), undefined));
    expect(changeFingerprint(importPlan("id-B"), undefined)).not.toBe(changeFingerprint(importPlan("id-A"), undefined));
  });

  test("an import that also updates: only importing.id differs, the fingerprints differ", () => {
    expect(changeFingerprint(importPlan("id-B", ["update"], "x"), undefined)).not.toBe(changeFingerprint(importPlan("id-A", ["update"], "x"), undefined));
  });

  test("a plain import is a change, not a no-op: a plan without it does not match", () => {
    expect(changeFingerprint(importPlan("id-A"), undefined)).not.toBe(changeFingerprint({ format_version: "1.2", resource_changes: [] }, undefined));
  });

  test("a plan that imports nothing keeps the fingerprint it had before imports counted (approved plans still match)", () => {
    const plan = { resource_changes: [{ address: "terraform_data.a", change: { actions: ["create"], after: { input: "x" }, after_unknown: { id: true }, after_sensitive: {} } }] };
    // The formula as it was: address, previous address, actions and planned values, then the configuration and plan file digest.
    const before = sha256Hex(canonicalJson({ changes: [{ address: "terraform_data.a", previous_address: null, actions: ["create"], after: { input: "x", id: { unknown: true } } }], configuration: null, snapshot: null }));
    expect(changeFingerprint(plan, undefined)).toBe(before);
  });
});

describe("a reviewer sees the import id", () => {
  const comment = (planJson: unknown) =>
    renderPlanComment(t, { repo: "acme/infra", sha: "0123456789abcdef0123456789abcdef01234567", projects: [{ name: "app", workspace: "default", status: "succeeded", changes: parsePlanChanges(planJson) }] }).join("\n");

  test("a plain import names its id", () => {
    expect(comment(importPlan("id-A"))).toMatch(/\*\*import\*\* \(1\)\n\n🔵 ← `terraform_data.adopted` \(import id: `id-A`\)\n/);
  });

  test("an import that also updates says where it came from and what changes", () => {
    expect(comment(importPlan("id-A", ["update"], "x"))).toContain("🟡 ~ `terraform_data.adopted` (imported from `id-A` and updated)\n");
  });
});
