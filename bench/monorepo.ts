// Monorepo planning, in one run on one machine: a PR touching all 50 projects planned
// by plangate with 1 and with 2 concurrent jobs, the same 50 projects as bare
// `terraform init && terraform plan` run 1 and 2 at a time, plangate's per-project
// overhead (job start -> first terraform command), and a PR touching 1 of 50
// projects vs a 1-project repository. Run: npm run bench:monorepo
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";

const PROJECTS = 50;
const project = (i: number, round: number) => `resource "terraform_data" "r" {\n  count = 20\n  input = "p${i}-r${round}-\${count.index}"\n}\n`;
let pr = 0;

async function timePlan(h: Harness, repo: GitRepo, files: Record<string, string>, phase?: (seconds: number) => void): Promise<number> {
  const number = ++pr;
  const sha = repo.commit(files, `bench-${number}`);
  h.fake.pullFiles.set("Codertocat/Hello-World#" + number, Object.keys(files));
  h.fake.pulls.set("Codertocat/Hello-World#" + number, { headSha: sha });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  const started = performance.now();
  await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
  await waitFor("plan", () => h.fake.checkRuns.some((c) => c.head_sha === sha && c.status === "completed"), 600_000);
  const seconds = (performance.now() - started) / 1000;
  const { rows } = await h.db.pool.query<{ span: string }>("select extract(epoch from (max(finished_at) - min(started_at))) as span from runs where sha = $1", [sha]);
  phase?.(Number(rows[0]!.span));
  await new Promise((r) => setTimeout(r, 2500)); // GitHub write pacing settles between PRs
  return seconds;
}

/** Sum and count of a Prometheus histogram in /metrics (all label sets). */
async function histogram(h: Harness, name: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const total = (suffix: string) =>
    text
      .split("\n")
      .filter((l) => l.startsWith(`${name}_${suffix}`))
      .reduce((acc, l) => acc + Number(l.split(" ").at(-1)), 0);
  return { sum: total("sum"), count: total("count") };
}

async function withRepo(workers: string, projects: number, fn: (h: Harness, repo: GitRepo) => Promise<void>) {
  const h = await startHarness({ PLANGATE_WORKERS: workers });
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit(Object.fromEntries(Array.from({ length: projects }, (_, i) => [`projects/p${i}/main.tf`, project(i, 0)])));
  await timePlan(h, repo, { "projects/p0/main.tf": project(0, 99) }); // warm the mirror
  await fn(h, repo);
  await h.close();
}

const all = (round: number) => Object.fromEntries(Array.from({ length: PROJECTS }, (_, i) => [`projects/p${i}/main.tf`, project(i, round)]));

function terraform(args: string[], cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("terraform", args, { cwd, env, stdio: "ignore" });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`terraform ${args[0]} in ${cwd} exited ${code}`))));
  });
}

/** The 50 projects as plain folders, `terraform init && terraform plan -out` each, `parallel` at a time: seconds. */
async function barePlans(parallel: number, round: number): Promise<number> {
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-bare-"));
  writeFileSync(path.join(root, "none.tfrc"), "disable_checkpoint = true\n");
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, TF_IN_AUTOMATION: "1", TF_INPUT: "0", TF_CLI_CONFIG_FILE: path.join(root, "none.tfrc") };
  const dirs = Array.from({ length: PROJECTS }, (_, i) => {
    const dir = path.join(root, `p${i}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, "main.tf"), project(i, round));
    return dir;
  });
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < dirs.length) {
      const dir = dirs[next++]!;
      await terraform(["init", "-input=false", "-no-color"], dir, env);
      await terraform(["plan", "-input=false", "-no-color", "-lock=true", "-out=tfplan"], dir, env);
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  const seconds = (performance.now() - started) / 1000;
  rmSync(root, { recursive: true, force: true });
  return seconds;
}

/** BENCH_PARTS=overhead: only plangate's 50-project PR with 1 job (a quick look at the per-project numbers). */
const quick = process.env.BENCH_PARTS === "overhead";

async function main() {
  const result: Record<string, number> = {};
  if (quick) {
    await withRepo("1", PROJECTS, async (h, repo) => {
      await timePlan(h, repo, all(1), (s) => (result.all50_workers1_planning = s));
      const o = await histogram(h, "plangate_plan_overhead_seconds");
      console.log(JSON.stringify({ planning_seconds: result.all50_workers1_planning, per_project_ms: (result.all50_workers1_planning! / PROJECTS) * 1000, overhead_mean_ms: (o.sum / o.count) * 1000, overhead_count: o.count }));
    });
    return;
  }
  await barePlans(2, 0); // warm terraform's binary in the page cache
  result.bare50_1 = await barePlans(1, 1);
  result.bare50_2 = await barePlans(2, 2);
  // planning phase: first project job start to last project job end, without GitHub's write pacing
  const overhead: Record<string, number> = {};
  await withRepo("1", PROJECTS, async (h, repo) => {
    const before = await histogram(h, "plangate_plan_overhead_seconds");
    result.all50_workers1 = await timePlan(h, repo, all(1), (s) => (result.all50_workers1_planning = s));
    const after = await histogram(h, "plangate_plan_overhead_seconds");
    overhead.workers1_mean_ms = ((after.sum - before.sum) / (after.count - before.count)) * 1000;
  });
  await withRepo("2", PROJECTS, async (h, repo) => {
    const before = await histogram(h, "plangate_plan_overhead_seconds");
    result.all50_workers2 = await timePlan(h, repo, all(2), (s) => (result.all50_workers2_planning = s));
    const after = await histogram(h, "plangate_plan_overhead_seconds");
    overhead.workers2_mean_ms = ((after.sum - before.sum) / (after.count - before.count)) * 1000;
    result.one_of_50 = await timePlan(h, repo, { "projects/p7/main.tf": project(7, 3) });
  });
  await withRepo("2", 1, async (h, repo) => {
    result.one_project_repo = await timePlan(h, repo, { "projects/p0/main.tf": project(0, 3) });
  });
  // Bare again after plangate: the machine is shared, so its load may have changed meanwhile.
  result.bare50_1_after = await barePlans(1, 3);
  result.bare50_2_after = await barePlans(2, 4);
  const plangateSpeedup = result.all50_workers1_planning! / result.all50_workers2_planning!;
  const bareSpeedup = (result.bare50_1! + result.bare50_1_after!) / (result.bare50_2! + result.bare50_2_after!);
  console.log(JSON.stringify({
    seconds: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, +v.toFixed(2)])),
    speedup_2_vs_1: +(result.all50_workers1! / result.all50_workers2!).toFixed(2),
    speedup_2_vs_1_planning_phase: +plangateSpeedup.toFixed(2),
    bare_speedup_2_vs_1: +bareSpeedup.toFixed(2), // both bare rounds together
    bare_speedup_2_vs_1_before_after: [+(result.bare50_1! / result.bare50_2!).toFixed(2), +(result.bare50_1_after! / result.bare50_2_after!).toFixed(2)],
    planning_speedup_vs_bare_speedup: +(plangateSpeedup / bareSpeedup).toFixed(2),
    per_project_ms: {
      plangate_planning_1_job: +((result.all50_workers1_planning! / PROJECTS) * 1000).toFixed(0),
      bare_init_plan_1_at_a_time: +(((result.bare50_1! + result.bare50_1_after!) / 2 / PROJECTS) * 1000).toFixed(0),
      overhead_job_start_to_first_terraform_1_job: +overhead.workers1_mean_ms!.toFixed(1),
      overhead_job_start_to_first_terraform_2_jobs: +overhead.workers2_mean_ms!.toFixed(1),
    },
    one_of_50_vs_one_project: +(result.one_of_50! / result.one_project_repo!).toFixed(2),
  }, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
