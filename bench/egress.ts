// Cost of the egress filter: the same sandboxed `terraform init && plan && show`
// of one terraform_data project, with the filter (network: true, as plans run)
// and without any network (network: false), alternating, plus bare terraform.
// Run: npm run bench:egress
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Sandbox } from "../src/sandbox/sandbox.js";
import { findBinary } from "../src/settings/find-binary.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const terraform = findBinary("terraform") ?? "terraform";
const MAIN_TF = 'resource "terraform_data" "a" {\n  input = "x"\n}\n';

function workspace(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-bench-egress-"));
  chmodSync(dir, 0o755);
  writeFileSync(path.join(dir, "main.tf"), MAIN_TF);
  writeFileSync(path.join(dir, "none.tfrc"), "disable_checkpoint = true\n");
  return dir;
}

async function main() {
  const sandbox = new Sandbox("bwrap");
  const steps = [["init", "-input=false", "-no-color"], ["plan", "-input=false", "-no-color", "-out=tfplan"], ["show", "-json", "tfplan"]];
  const sandboxed = async (network: boolean) => {
    const dir = workspace();
    const started = performance.now();
    for (const args of steps) {
      const r = await sandbox.run({ command: [terraform, ...args], workDir: dir, network, env: { TF_IN_AUTOMATION: "1", TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc") }, timeoutMs: 60_000 });
      if (r.exitCode !== 0) throw new Error(r.output);
    }
    const ms = performance.now() - started;
    rmSync(dir, { recursive: true, force: true });
    return ms;
  };
  await sandboxed(true); // the filter's namespace holder starts once per slot
  const times = { filter: [] as number[], none: [] as number[], bare: [] as number[] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const network of i % 2 ? [true, false] : [false, true]) times[network ? "filter" : "none"].push(await sandboxed(network));
    const dir = workspace();
    const started = performance.now();
    const env = { PATH: process.env.PATH, HOME: dir, TF_IN_AUTOMATION: "1", TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc") };
    for (const args of steps) execFileSync(terraform, args, { cwd: dir, env, stdio: "ignore" });
    times.bare.push(performance.now() - started);
    rmSync(dir, { recursive: true, force: true });
  }
  await sandbox.close();
  const filter = median(times.filter);
  const none = median(times.none);
  console.log(JSON.stringify({
    rounds: ROUNDS,
    initPlanShowMs: { withEgressFilter: +filter.toFixed(1), sandboxWithoutNetwork: +none.toFixed(1), bareTerraform: +median(times.bare).toFixed(1) },
    filterCostPercent: +(((filter - none) / none) * 100).toFixed(1),
  }, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
