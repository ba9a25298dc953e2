import { cpSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { jest } from "@jest/globals";
import { cdktfSynth } from "../../src/engines/cdktf.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { terraformPlan } from "../../src/engines/terraform.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { engineTest } from "../support/app-harness.js";
import { workspaces } from "../support/sandbox.js";

jest.setTimeout(300_000);

const sandbox = new Sandbox("bwrap");
const workspace = workspaces("plangate-cdktf-stacks-");
const depsCacheDir = workspace();
const homes = new TerraformHomes(workspace());

/** A run folder holding a copy of test/fixtures/cdktf-chain (network <- database <- web, and tools). */
function chainCheckout(): { root: string; checkoutDir: string } {
  const root = workspace();
  const checkoutDir = path.join(root, "checkout");
  mkdirSync(checkoutDir);
  cpSync("test/fixtures/cdktf-chain", path.join(checkoutDir, "app"), { recursive: true });
  return { root, checkoutDir };
}

/** Synthesizes with `stacks:` and plans every stack returned, in order, as the worker does. */
async function synthAndPlan(stacks: string[]) {
  const { root, checkoutDir } = chainCheckout();
  const synth = await cdktfSynth({ sandbox, checkoutDir, projectDir: "app", env: {}, timeoutMs: 240_000, depsCacheDir, stacks });
  if (!synth.ok) throw new Error(`synth failed: ${synth.message}\n${synth.output}`);
  const { home } = await homes.acquire();
  const planned: Record<string, string> = {};
  for (const stack of synth.stacks) {
    const outDir = path.join(root, "out", stack.name);
    mkdirSync(outDir, { recursive: true });
    const plan = await terraformPlan({ sandbox, bin: findBinary("terraform") ?? "terraform", tool: "terraform", home, checkoutDir, projectDir: stack.dir, workspace: "default", env: {}, timeoutMs: 60_000, outDir });
    if (!plan.ok) throw new Error(`plan of ${stack.name} failed: ${plan.output}`);
    const json = plan.planJson as { resource_changes: { change: { after: { input: string } } }[] };
    planned[stack.name] = json.resource_changes.map((rc) => rc.change.after.input).join(",");
  }
  rmSync(root, { recursive: true, force: true });
  return { names: synth.stacks.map((s) => s.name), planned };
}

describe("cdktf stacks: keeps the listed stacks and what they depend on", () => {
  engineTest("stacks: [web] plans web and, before it, every stack web depends on (not tools)", async () => {
    const { names, planned } = await synthAndPlan(["web"]);
    expect(names).toEqual(["network", "database", "web"]);
    expect(planned).toEqual({ network: "from-network", database: "from-database", web: "from-web" });
  });

  engineTest("stacks: [tools, database] keeps the manifest's dependency order", async () => {
    const { names } = await synthAndPlan(["tools", "database"]);
    expect(names).toEqual(["network", "database", "tools"]);
  });

  engineTest("a stack with no dependencies stays alone", async () => {
    const { names } = await synthAndPlan(["network"]);
    expect(names).toEqual(["network"]);
  });
});
