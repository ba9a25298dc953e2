import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ENGINES } from "../../src/engines/registry.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { discoverProjects } from "../../src/projects/discover.js";
import { ProjectRuns } from "../../src/run/project-runs.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { envAllowlist } from "../../src/settings/env-allow.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { loadRepoConfig } from "../../src/settings/load-repo-config.js";
import { engineTest } from "../support/app-harness.js";
import { layers } from "../support/layers-engine.js";

/**
 * An engine is one module and one registry line: the test engine `layers`
 * (test/support/layers-engine.ts) added to the registry is accepted by the
 * config, found by discovery, and planned and applied by the one run
 * service with real terraform in bubblewrap, each layer in its order.
 */
const engines = ENGINES.with(layers);
const sandbox = new Sandbox("bwrap"); // engineTest fails in CI (and says so elsewhere) without bwrap
afterAll(() => sandbox.close());

function checkout(files: Record<string, string>): { root: string; checkoutDir: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-layers-"));
  chmodSync(root, 0o755);
  const checkoutDir = path.join(root, "checkout");
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(checkoutDir, file)), { recursive: true });
    writeFileSync(path.join(checkoutDir, file), content);
  }
  chmodSync(checkoutDir, 0o777); // the sandbox's user writes the layers' state here
  for (const dir of ["stack", "stack/base", "stack/app"]) chmodSync(path.join(checkoutDir, dir), 0o777);
  return { root, checkoutDir };
}

const FILES = {
  "stack/layers.json": JSON.stringify({ layers: ["base", "app"] }),
  "stack/base/main.tf": 'resource "terraform_data" "network" {\n  input = "10.0.0.0/16"\n}\n',
  "stack/app/main.tf": 'resource "terraform_data" "service" {\n  input = "web"\n}\n',
  "plain/main.tf": 'resource "terraform_data" "x" {}\n',
};

test("the config accepts a registered engine's name, and names the known ones for an unknown one", () => {
  const text = "version: 1\nprojects:\n  - dir: stack\n    engine: layers\n";
  const accepted = loadRepoConfig(text, engines.names);
  expect(accepted.ok && accepted.config.projects[0]!.engine).toBe("layers");
  const refused = loadRepoConfig(text, ENGINES.names);
  expect(refused.ok).toBe(false);
  expect(!refused.ok && refused.problems[0]!.message).toMatch(/^projects\[0\]\.engine: .*"terraform"\|"tofu"\|"cdktf"/);
});

test("discovery gives the engine its folders; the folders it owns are not projects of another engine", () => {
  const found = discoverProjects(Object.keys(FILES), new Set(), engines.all).map((p) => [p.dir, p.engine]);
  expect(found).toEqual([
    ["plain", "terraform"],
    ["stack", "layers"],
  ]);
  // Without the engine in the registry, its layers are plain terraform projects.
  expect(discoverProjects(Object.keys(FILES), new Set(), ENGINES.all).map((p) => p.dir)).toEqual(["plain", "stack/app", "stack/base"]);
});

engineTest("the run service prepares the engine's units, plans each with real terraform, and applies them in order", async () => {
  const { root, checkoutDir } = checkout(FILES);
  const tools = {
    sandbox,
    homes: new TerraformHomes(path.join(root, "terraform")),
    binaries: { terraformBin: findBinary("terraform") ?? "terraform", tofuBin: "tofu" },
    depsCacheDir: path.join(root, "deps"),
  };
  const none = envAllowlist([]);
  const runs = new ProjectRuns({ engines, tools, maskPatterns: [], envAllow: none, applyEnvAllow: none, encryptionKey: Buffer.alloc(32, 1) });
  const project = { name: "stack", dir: "stack", engine: "layers", workspace: "default", env: [] };
  const opened = await runs.open({ checkout: { checkoutDir }, project, phase: "apply", reason: "merge", deadline: Date.now() + 120_000 });
  if (!opened.ok) throw new Error(opened.message);
  const prepared = await opened.run.prepare();
  expect(prepared).toEqual({ ok: true, units: [{ name: "base", dir: "stack/base" }, { name: "app", dir: "stack/app" }], output: "2 layers" });
  if (!prepared.ok) return;
  for (const unit of prepared.units) {
    const planned = await opened.run.plan(unit, { outDir: path.join(root, "out", unit.name!) });
    if (!planned.ok) throw new Error(planned.output);
    expect(planned.changes().resources.map((r) => [r.address, r.action])).toEqual([[unit.name === "base" ? "terraform_data.network" : "terraform_data.service", "create"]]);
    expect(planned.fingerprint()).toMatch(/^[0-9a-f]{64}$/);
    const applied = await opened.run.apply(unit, { outDir: path.join(root, "out", unit.name!) });
    expect(applied).toMatchObject({ ok: true });
  }
  // Each layer's state holds its own resource: applied where the engine said.
  const state = (dir: string) => JSON.parse(readFileSync(path.join(checkoutDir, dir, "terraform.tfstate"), "utf8")).resources.map((r: { name: string }) => r.name);
  expect(state("stack/base")).toEqual(["network"]);
  expect(state("stack/app")).toEqual(["service"]);
});
