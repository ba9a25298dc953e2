import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { terraformPlan, type TerraformJob } from "../../src/engines/terraform.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { engineTest } from "../support/app-harness.js";

const sandbox = new Sandbox("bwrap"); // engineTest fails in CI (and says so elsewhere) without bwrap

async function job(files: Record<string, string>, overrides: Partial<TerraformJob> = {}): Promise<TerraformJob> {
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-engine-"));
  chmodSync(root, 0o755);
  const checkoutDir = path.join(root, "checkout");
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(checkoutDir, file)), { recursive: true });
    writeFileSync(path.join(checkoutDir, file), content);
  }
  mkdirSync(path.join(root, "out"));
  const { home } = await new TerraformHomes(path.join(root, "tf")).acquire();
  return { sandbox, bin: findBinary("terraform") ?? "terraform", tool: "terraform", home, checkoutDir, projectDir: "stack", workspace: "default", env: {}, timeoutMs: 60_000, outDir: path.join(root, "out"), ...overrides };
}

describe("terraform driver", () => {
  engineTest("plans a project in a subdirectory that uses a module beside it", async () => {
    const outcome = await terraformPlan(
      await job({
        "stack/main.tf": 'module "m" {\n  source = "../modules/m"\n}\n',
        "modules/m/main.tf": 'resource "terraform_data" "x" { input = "from-module" }\n',
      }),
    );
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.planFile.subarray(0, 2).toString()).toBe("PK");
    const changes = (outcome.planJson as { resource_changes: { address: string }[] }).resource_changes.map((c) => c.address);
    expect(changes).toEqual(["module.m.terraform_data.x"]);
  });

  engineTest("a deadline shorter than terraform needs ends in a timed-out failure", async () => {
    const outcome = await terraformPlan(await job({ "stack/main.tf": 'resource "terraform_data" "x" {}\n' }, { timeoutMs: 1 }));
    expect(outcome).toMatchObject({ ok: false, timedOut: true });
    // The step the deadline caught: init when the 1 ms timer fires on time, a later one when a loaded machine runs it late.
    expect(["init", "plan", "show"]).toContain(!outcome.ok && outcome.stage);
  });

  engineTest("a non-default workspace is created when missing and selected for the plan", async () => {
    const outcome = await terraformPlan(
      await job({ "stack/main.tf": 'resource "terraform_data" "x" { input = terraform.workspace }\n' }, { workspace: "staging" }),
    );
    expect(outcome.ok).toBe(true);
    const after = (outcome as { planJson: { resource_changes: { change: { after: { input: string } } }[] } }).planJson.resource_changes[0]!.change.after.input;
    expect(after).toBe("staging");
  });

  engineTest("init, plan and show run in one sandbox entry; a failing plan is named by its stage and show never runs", async () => {
    const failing = await job({ "stack/main.tf": 'resource "terraform_data" "x" {\n  input = var.missing\n}\n' });
    const outcome = await terraformPlan(failing);
    expect(outcome).toMatchObject({ ok: false, stage: "plan", timedOut: false });
    expect(!outcome.ok && outcome.output).toContain("Terraform has been successfully initialized"); // init ran first, in the same entry
    expect(!outcome.ok && outcome.output).toContain("Reference to undeclared input variable");
    expect(readFileSync(path.join(failing.outDir, "plan.json"), "utf8")).toBe(""); // show never ran
  });

  engineTest("a step cannot write into the show step's output or the stage list: both are closed to it, and root's files to reopen", async () => {
    // The hostile PR code in the position of terraform itself: every step's process tries every way into fds 3 and 4, then runs the real terraform.
    const tools = mkdtempSync(path.join(os.tmpdir(), "plangate-hostile-bin-"));
    chmodSync(tools, 0o755);
    const terraform = findBinary("terraform") ?? "terraform";
    const hostile = path.join(tools, "terraform");
    const attempts = ['echo FORGED >&3', 'echo FORGED >&4', 'echo FORGED > /proc/$PPID/fd/3', 'echo FORGED > /proc/$PPID/fd/4', 'echo FORGED >> /proc/$PPID/fd/3'];
    writeFileSync(hostile, `#!/bin/sh\n${attempts.map((a) => `if ${a}; then echo "WROTE: ${a}" >&2; fi`).join("\n")}\nexec ${terraform} "$@"\n`, { mode: 0o755 });
    const hostileJob = await job({ "stack/main.tf": 'resource "terraform_data" "x" { input = "real" }\n' }, { bin: hostile });
    const outcome = await terraformPlan(hostileJob);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.output).not.toContain("WROTE");
    // The plan's JSON is terraform's own, whole, and the stages file lists the stages only.
    expect((outcome.planJson as { resource_changes: { change: { after: { input: string } } }[] }).resource_changes[0]!.change.after.input).toBe("real");
    const stages = readFileSync(path.join(hostileJob.outDir, ".stages-init-plan-show"), "utf8");
    expect(stages).toBe("init\nplan\nshow\n");
    expect(existsSync(path.join(hostileJob.outDir, "plan.json"))).toBe(true);
  });
});
