// The real hashicorp/aws provider (675 MB, from the machine's read-only
// filesystem mirror) in 50 projects, 2 at a time, in one run on one machine:
// - bare `terraform init` per project, without a plugin cache and with a
//   shared `plugin_cache_dir`, then `plan -out && show -json`;
// - plangate planning the same 50 projects in one PR with 2 jobs (its shared
//   provider cache, keyed by the lock file, filled once and then mounted
//   read-only into every sandbox).
// It counts "text file busy" and other failures, and how many provider
// caches plangate filled. Run: DATABASE_URL=postgres://… npm run bench:real-provider
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startHarness, waitFor, WEBHOOK_SECRET } from "../test/support/app-harness.js";
import { AWS_PROVIDER_MIRROR, awsMirrorCliConfig, awsMirrorUsable } from "../test/support/fake-sts.js";
import { GitRepo } from "../test/support/git-repo.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";

const PROJECTS = Number(process.env.BENCH_PROJECTS ?? 50);
const PARALLEL = 2;

/** A project that uses the real provider and plans one bucket; it makes no AWS call (no refresh of anything, skipped checks). */
const project = (i: number, round: number) => `terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}
provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "bench"
  secret_key                  = "bench"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
resource "aws_s3_bucket" "b" {
  bucket = "plangate-bench-p${i}-r${round}"
}
`;

interface Timed {
  seconds: number;
  output: string;
  ok: boolean;
}

function terraform(args: string[], cwd: string, env: Record<string, string>): Promise<Timed> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn("terraform", args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("close", (code) => resolve({ seconds: (performance.now() - started) / 1000, output, ok: code === 0 }));
  });
}

/** The lock file every project commits (terraform init against the mirror, once). */
async function lockFile(root: string, env: Record<string, string>): Promise<string> {
  const dir = path.join(root, "lock");
  mkdirSync(dir);
  writeFileSync(path.join(dir, "main.tf"), project(0, 0));
  const init = await terraform(["init", "-input=false", "-no-color"], dir, env);
  if (!init.ok) throw new Error(`terraform init against ${AWS_PROVIDER_MIRROR} failed:\n${init.output}`);
  return readFileSync(path.join(dir, ".terraform.lock.hcl"), "utf8");
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (s: number) => Math.round(s * 1000);

/** The projects as plain folders, `init`, then `plan -out && show -json`, PARALLEL at a time. */
async function bare(root: string, lock: string, env: Record<string, string>, round: number, pluginCache: boolean) {
  const base = mkdtempSync(path.join(root, pluginCache ? "cached-" : "uncached-"));
  const runEnv = { ...env };
  if (pluginCache) {
    runEnv.TF_PLUGIN_CACHE_DIR = path.join(base, "plugin-cache");
    mkdirSync(runEnv.TF_PLUGIN_CACHE_DIR);
  }
  const dirs = Array.from({ length: PROJECTS }, (_, i) => {
    const dir = path.join(base, `p${i}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, "main.tf"), project(i, round));
    writeFileSync(path.join(dir, ".terraform.lock.hcl"), lock);
    return dir;
  });
  const inits: number[] = [];
  const projects: number[] = [];
  const failures: string[] = [];
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < dirs.length) {
      const dir = dirs[next++]!;
      const init = await terraform(["init", "-input=false", "-no-color"], dir, runEnv);
      inits.push(init.seconds);
      if (!init.ok) {
        failures.push(init.output.includes("text file busy") ? "text file busy" : init.output.slice(0, 300));
        continue;
      }
      const plan = await terraform(["plan", "-input=false", "-no-color", "-refresh=false", "-out=tfplan"], dir, runEnv);
      const show = plan.ok ? await terraform(["show", "-json", "tfplan"], dir, runEnv) : plan;
      if (!show.ok) failures.push(show.output.slice(0, 300));
      projects.push(init.seconds + plan.seconds + (plan.ok ? show.seconds : 0));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  const wall = (performance.now() - started) / 1000;
  rmSync(base, { recursive: true, force: true });
  return { wall_s: +wall.toFixed(2), init_ms: { mean: ms(mean(inits)), median: ms(median(inits)), first: ms(inits[0]!) }, project_ms: { mean: ms(mean(projects)), median: ms(median(projects)) }, failures };
}

async function plangate(lock: string) {
  const h = await startHarness({ PLANGATE_WORKERS: String(PARALLEL), PLANGATE_PROVIDER_MIRROR: AWS_PROVIDER_MIRROR, PLANGATE_JOB_TIMEOUT: "600s" });
  try {
    const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
    const files = (round: number) =>
      Object.fromEntries(Array.from({ length: PROJECTS }, (_, i) => [[`projects/p${i}/main.tf`, project(i, round)], [`projects/p${i}/.terraform.lock.hcl`, lock]]).flat());
    repo.commit({ "README.md": "bench" });
    const changed = files(1);
    const sha = repo.commit(changed, "bench-1");
    h.fake.pullFiles.set("Codertocat/Hello-World#1", Object.keys(changed).filter((f) => f.endsWith("main.tf")));
    h.fake.pulls.set("Codertocat/Hello-World#1", { headSha: sha });
    const payload = examplePayload("pull_request", "opened");
    Object.assign(payload.pull_request, { number: 1, draft: false });
    payload.pull_request.head.sha = sha;
    const started = performance.now();
    await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
    await waitFor("every plan", () => h.fake.checkRuns.some((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 1_800_000);
    const wall = (performance.now() - started) / 1000;
    const { rows } = await h.db.pool.query<{ status: string; seconds: number; error: { message?: string } | null; output: string | null }>(
      "select status, extract(epoch from (finished_at - started_at))::float8 as seconds, error, output from runs where sha = $1 and kind = 'plan'",
      [sha],
    );
    const { rows: span } = await h.db.pool.query<{ span: number }>("select extract(epoch from (max(finished_at) - min(started_at)))::float8 as span from runs where sha = $1", [sha]);
    const cacheRoot = path.join(h.settings.dataDir, "terraform", "provider-cache");
    const caches = readdirSync(cacheRoot).filter((name) => !name.startsWith("."));
    const check = h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed");
    return {
      webhook_to_check_s: +wall.toFixed(2),
      planning_phase_s: +Number(span[0]!.span).toFixed(2),
      project_ms: { mean: ms(mean(rows.map((r) => r.seconds))), median: ms(median(rows.map((r) => r.seconds))) },
      check: check?.conclusion,
      succeeded: rows.filter((r) => r.status === "succeeded").length,
      failures: rows.filter((r) => r.status !== "succeeded").map((r) => (r.output?.includes("text file busy") ? "text file busy" : (r.error?.message ?? r.status).slice(0, 300))),
      provider_caches_filled: caches.length,
    };
  } finally {
    await h.close();
  }
}

async function main() {
  if (!awsMirrorUsable()) throw new Error(`the AWS provider mirror ${AWS_PROVIDER_MIRROR} is not on this machine: nothing to measure`);
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-real-provider-"));
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, TF_IN_AUTOMATION: "1", TF_INPUT: "0", TF_CLI_CONFIG_FILE: awsMirrorCliConfig(root) };
  try {
    const lock = await lockFile(root, env);
    cpSync(path.join(root, "lock", ".terraform.lock.hcl"), path.join(root, "lock.hcl"));
    // Each part is printed as soon as it is measured (the whole run takes minutes).
    const part = async (name: string, measure: () => Promise<unknown>) => console.log(JSON.stringify({ [name]: await measure() }));
    console.log(JSON.stringify({ machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`, date: new Date().toISOString(), projects: PROJECTS, parallel: PARALLEL }));
    await part("bare_without_plugin_cache", () => bare(root, lock, env, 1, false));
    await part("bare_with_plugin_cache_dir", () => bare(root, lock, env, 2, true));
    await part("plangate", () => plangate(lock));
    // Bare again after plangate: the machine is shared, its load may have changed meanwhile.
    await part("bare_with_plugin_cache_dir_after", () => bare(root, lock, env, 3, true));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
