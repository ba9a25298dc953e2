// Per-project cost of plangate's sandboxed plan against bare terraform, without the app around it:
// the scale bench's projects (terraform_data, two local modules) planned through the run service
// (open → prepare → plan, as a PR's project job does, over one shared read-only export) and by bare
// `terraform init && plan -out && show -json`, 2 at a time, rounds alternating. Per project: wall
// time, where the sandboxed run's time goes (before the program starts, the program, after), and
// CPU time (this process, and the children it waited for: terraform, bwrap and the rest).
// Run: npm run bench:build && node bench/.build/bench/per-project.js [projects per round] [rounds]
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ENGINES } from "../src/engines/registry.js";
import { TerraformHomes } from "../src/engines/terraform-home.js";
import { ProjectRuns, type TogetherPart } from "../src/run/project-runs.js";
import { EgressFilter } from "../src/sandbox/egress/egress-filter.js";
import { SandboxCaps } from "../src/sandbox/limits.js";
import { makeReadOnlyTree } from "../src/sandbox/read-only-tree.js";
import { Sandbox } from "../src/sandbox/sandbox.js";
import { envAllowlist } from "../src/settings/env-allow.js";
import { findBinary } from "../src/settings/find-binary.js";

const PARALLEL = 2;
const N = Number(process.argv[2] ?? 40);
const ROUNDS = Number(process.argv[3] ?? 3);
const terraformBin = findBinary("terraform") ?? "terraform";
// BATCH=K: also measure K projects planned in one sandbox entry, each in a nested sandbox of its own (the run
// service's planTogether, as a large PR's batch job plans them).
const BATCH = Number(process.env.BATCH ?? 0);

const project = (i: number) =>
  `module "common" {\n  source = "../../modules/common"\n  name   = "p${i}"\n}\n` +
  (i % 10 === 0 ? `module "network" {\n  source = "../../modules/network"\n  name   = "p${i}"\n}\n` : "") +
  `resource "terraform_data" "r" {\n  count = 5\n  input = "p${i}-r0-\${count.index}-\${module.common.id}"\n}\n`;
const common = `variable "name" {}\nresource "terraform_data" "c" {\n  count = 3\n  input = "\${var.name}-common-v1-\${count.index}"\n}\noutput "id" {\n  value = "common-v1"\n}\n`;
const network = `variable "name" {}\nresource "terraform_data" "n" {\n  input = "\${var.name}-network"\n}\n`;

function writeTree(root: string, n: number): void {
  const files: Record<string, string> = { "modules/common/main.tf": common, "modules/network/main.tf": network };
  for (let i = 0; i < n; i++) files[`projects/p${i}/main.tf`] = project(i);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
}

/** CPU seconds of this process (user+system) and of the children it has waited for, from /proc. */
function cpu(): { self: number; children: number; machine: number } {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  const tick = 100;
  const children = (Number(fields[13]) + Number(fields[14])) / tick;
  const u = process.cpuUsage();
  // The whole machine's busy time (user, nice, system, irq, softirq): what every process of the run used, the sandbox's included.
  const [, user, nice, system, , , irq, softirq] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).map(Number);
  return { self: (u.user + u.system) / 1e6, children, machine: (user! + nice! + system! + irq! + softirq!) / tick };
}

async function lanes(n: number, one: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < n) await one(next++);
  }));
  return performance.now() - started;
}

function terraform(args: string[], cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(terraformBin, args, { cwd, env, stdio: ["ignore", "ignore", "ignore"] });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`terraform ${args[0]} exited ${code}`))));
  });
}

async function bare(n: number) {
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-pp-bare-"));
  writeFileSync(path.join(root, "none.tfrc"), "disable_checkpoint = true\n");
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, TF_IN_AUTOMATION: "1", TF_INPUT: "0", TF_CLI_CONFIG_FILE: path.join(root, "none.tfrc") };
  writeTree(root, n);
  const c0 = cpu();
  const wall = await lanes(n, async (i) => {
    const dir = path.join(root, "projects", `p${i}`);
    await terraform(["init", "-input=false", "-no-color"], dir, env);
    await terraform(["plan", "-input=false", "-no-color", "-out=tfplan"], dir, env);
    await terraform(["show", "-json", "-no-color", "tfplan"], dir, env);
  });
  const c1 = cpu();
  rmSync(root, { recursive: true, force: true });
  return { per_project_ms: Math.round(wall / n * PARALLEL), cpu_ms: { self: Math.round((c1.self - c0.self) / n * 1000), children: Math.round((c1.children - c0.children) / n * 1000), machine: Math.round((c1.machine - c0.machine) / n * 1000) } };
}

async function main() {
  const data = mkdtempSync(path.join(os.tmpdir(), "plangate-pp-"));
  chmodSync(data, 0o755);
  const tree = path.join(data, "export", "tree");
  writeTree(tree, N);
  await makeReadOnlyTree(path.join(data, "export"), "the export");
  chmodSync(path.join(data, "export"), 0o555);
  const sandbox = new Sandbox("bwrap", { caps: new SandboxCaps(), egress: new EgressFilter({ allow: [], deny: [] }) });
  sandbox.warm();
  const tools = { sandbox, homes: new TerraformHomes(path.join(data, "terraform")), binaries: { terraformBin, tofuBin: terraformBin }, depsCacheDir: path.join(data, "deps") };
  const runs = new ProjectRuns({ engines: ENGINES, tools, maskPatterns: [], envAllow: envAllowlist([]), applyEnvAllow: envAllowlist([]) });
  mkdirSync(path.join(data, "runs"), { recursive: true });
  chmodSync(path.join(data, "runs"), 0o755);
  let runId = 0;
  const plangate = async (n: number) => {
    const parts = { before: 0, program: 0, after: 0, open: 0 };
    const c0 = cpu();
    const wall = await lanes(n, async (i) => {
      const workRoot = path.join(data, "runs", String(++runId));
      const t0 = performance.now();
      let tStarted = 0;
      const opened = await runs.open({ checkout: { shared: tree, workDir: path.join(workRoot, "checkout") }, project: { name: `p${i}`, dir: `projects/p${i}`, engine: "terraform", workspace: "default", env: [] }, phase: "plan", reason: "pull_request", deadline: Date.now() + 600_000 });
      if (!opened.ok) throw new Error(opened.message);
      const tOpen = performance.now();
      const prepared = await opened.run.prepare();
      if (!prepared.ok) throw new Error(prepared.message);
      const planned = await opened.run.plan(prepared.units[0]!, { outDir: path.join(workRoot, "out"), started: () => (tStarted = performance.now()) });
      if (!planned.ok) throw new Error(`${planned.stage}: ${planned.output}`);
      const tPlanned = performance.now();
      planned.changes();
      planned.fingerprint();
      planned.output();
      await rm(workRoot, { recursive: true, force: true });
      const tEnd = performance.now();
      parts.open += tOpen - t0;
      parts.before += tStarted - t0;
      parts.program += tPlanned - tStarted;
      parts.after += tEnd - tPlanned;
    });
    const c1 = cpu();
    const per = (x: number) => Math.round(x / n);
    return { per_project_ms: Math.round(wall / n * PARALLEL), parts_ms: { open: per(parts.open), before_program: per(parts.before), program_and_read: per(parts.program), after: per(parts.after) }, cpu_ms: { self: Math.round((c1.self - c0.self) / n * 1000), children: Math.round((c1.children - c0.children) / n * 1000), machine: Math.round((c1.machine - c0.machine) / n * 1000) } };
  };
  /** K projects per sandbox entry through the run service's planTogether (each in a nested sandbox of its own), as a batch job plans them. */
  const batched = async (n: number) => {
    const c0 = cpu();
    const batches = Array.from({ length: Math.ceil(n / BATCH) }, (_, b) => Array.from({ length: Math.min(BATCH, n - b * BATCH) }, (_, j) => b * BATCH + j));
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const root = path.join(data, "runs", `batch-${++runId}`);
        const work = path.join(root, "work");
        mkdirSync(work, { recursive: true });
        const parts: TogetherPart[] = [];
        for (const i of batch) {
          const opened = await runs.open({ checkout: { shared: tree, workDir: path.join(work, String(i)) }, project: { name: `p${i}`, dir: `projects/p${i}`, engine: "terraform", workspace: "default", env: [] }, phase: "plan", reason: "pull_request", deadline: Date.now() + 600_000 });
          if (!opened.ok) throw new Error(opened.message);
          const prepared = await opened.run.prepare();
          if (!prepared.ok) throw new Error(prepared.message);
          parts.push({ run: opened.run, unit: prepared.units[0]!, step: { outDir: path.join(root, "out", String(i)) } });
        }
        const planned = await runs.planTogether(work, parts);
        for (const p of planned) {
          if (typeof p === "string") throw new Error(`a project of the batch was not planned (${p})`);
          p.changes();
          p.fingerprint();
          p.output();
        }
        await rm(root, { recursive: true, force: true });
      }
    }));
    const wall = performance.now() - started;
    const c1 = cpu();
    return { per_project_ms: Math.round(wall / n * PARALLEL), batch: BATCH, cpu_ms: { self: Math.round((c1.self - c0.self) / n * 1000), children: Math.round((c1.children - c0.children) / n * 1000), machine: Math.round((c1.machine - c0.machine) / n * 1000) } };
  };
  await plangate(4); // the namespace holders, terraform's binary into the page cache
  await bare(4);
  const results: { plangate: number[]; bare: number[]; batched: number[] } = { plangate: [], bare: [], batched: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? (["bare", "plangate", "batched"] as const) : (["plangate", "batched", "bare"] as const);
    for (const which of order.filter((w) => w !== "batched" || BATCH > 1)) {
      const res = which === "plangate" ? await plangate(N) : which === "batched" ? await batched(N) : await bare(N);
      results[which].push(res.per_project_ms);
      console.log(JSON.stringify({ round: r, which, load: os.loadavg()[0]!.toFixed(2), ...res }));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(JSON.stringify({ n: N, rounds: ROUNDS, plangate_ms: median(results.plangate), bare_ms: median(results.bare), ratio: +(median(results.plangate) / median(results.bare)).toFixed(3), ...(BATCH > 1 ? { batch: BATCH, batched_ms: median(results.batched), batched_ratio: +(median(results.batched) / median(results.bare)).toFixed(3) } : {}) }));
  await sandbox.close();
  rmSync(data, { recursive: true, force: true });
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
