// Scale: a monorepo of N root projects (terraform_data only, no provider) that all call the
// shared local module modules/common (every tenth also modules/network). A PR that changes
// modules/common affects every project. Per N, in one run on one machine:
// - plangate (the real app, bwrap sandbox, 2 jobs) against the fake GitHub and a real git repo:
//   affected-project selection, time to the first comment, time to all plans, comments,
//   GitHub requests (reads and writes), peak RSS, Postgres rows written;
// - bare `terraform init && terraform plan -out && terraform show -json` over the same N
//   folders, 2 at a time (xargs -P 2), and the ratio plangate/bare;
// - at N=500 also: a push changing one project after the full plan, against a 1-project
//   repository's plan.
// Run: DATABASE_URL=postgres://… npm run bench:scale -- 100 500 2000
// BENCH_SELECTION=only: per N, only the affected-project selection (the plan-pull-request job,
// and webhook → run group), without planning anything or running bare terraform.
// BENCH_PUSH_ROUNDS=K: K pushes changing one project of 500 (each another), against the 1-project
// repository's PR and K-1 pushes to it; medians compared, and each push's timeline printed (ms after
// its webhook: run group, the run's start and end, every GitHub write). BENCH_PUSH_AT=N: after N's run
// rather than 500's. BENCH_RATIO_ROUNDS=K: per N, K rounds of plangate between bare runs, and the median ratio.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { closePullRequest, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";

const PARALLEL = 2;
const OWNER = "Codertocat";
const NAME = "Hello-World";

const project = (i: number, round: number) =>
  `module "common" {\n  source = "../../modules/common"\n  name   = "p${i}"\n}\n` +
  (i % 10 === 0 ? `module "network" {\n  source = "../../modules/network"\n  name   = "p${i}"\n}\n` : "") +
  `resource "terraform_data" "r" {\n  count = 5\n  input = "p${i}-r${round}-\${count.index}-\${module.common.id}"\n}\n`;
const common = (round: number) => `variable "name" {}\nresource "terraform_data" "c" {\n  count = 3\n  input = "\${var.name}-common-v${round}-\${count.index}"\n}\noutput "id" {\n  value = "common-v${round}"\n}\n`;
const network = `variable "name" {}\nresource "terraform_data" "n" {\n  input = "\${var.name}-network"\n}\n`;

function repoFiles(n: number, round: number): Record<string, string> {
  const files: Record<string, string> = { "modules/common/main.tf": common(round), "modules/network/main.tf": network };
  for (let i = 0; i < n; i++) files[`projects/p${i}/main.tf`] = project(i, 0);
  return files;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round2 = (x: number) => +x.toFixed(2);

// ---------- bare terraform ----------

/**
 * Each folder's `init && plan -out && show -json`, PARALLEL at a time, run by `xargs -P` from a shell (not spawned
 * from this process: a fork of a Node process holding the app costs ~17 ms of its event loop, three times a project,
 * and made bare terraform look ~10% slower than it is). Each project's shell prints its milliseconds.
 */
function xargsPlans(dirs: string[], env: Record<string, string>): Promise<number[]> {
  const each = [
    'cd "$1" && s=$(date +%s%N)',
    "terraform init -input=false -no-color > /dev/null",
    "terraform plan -input=false -no-color -out=tfplan > /dev/null",
    "terraform show -json -no-color tfplan > /dev/null",
    'e=$(date +%s%N) && echo $(( (e - s) / 1000000 ))',
  ].join(" && ");
  return new Promise((resolve, reject) => {
    const child = spawn("xargs", ["-0", "-n", "1", "-P", String(PARALLEL), "sh", "-c", each, "sh"], { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out.split("\n").filter(Boolean).map(Number)) : reject(new Error(`bare terraform exited ${code}: ${err.slice(0, 500)}`))));
    child.stdin.end(dirs.map((d) => `${d}\0`).join(""));
  });
}

/** The N projects (and their modules) as plain folders: init && plan -out && show -json each, PARALLEL at a time (xargs -P). Seconds. */
async function barePlans(n: number, round: number, only?: number[]): Promise<{ wall_s: number; per_project_ms: number }> {
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-bare-"));
  writeFileSync(path.join(root, "none.tfrc"), "disable_checkpoint = true\n");
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, TF_IN_AUTOMATION: "1", TF_INPUT: "0", TF_CLI_CONFIG_FILE: path.join(root, "none.tfrc") };
  for (const [file, text] of Object.entries(repoFiles(n, round))) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  const dirs = (only ?? Array.from({ length: n }, (_, i) => i)).map((i) => path.join(root, "projects", `p${i}`));
  const started = performance.now();
  const times = await xargsPlans(dirs, env);
  const wall = (performance.now() - started) / 1000;
  rmSync(root, { recursive: true, force: true });
  if (times.length !== dirs.length) throw new Error(`bare terraform timed ${times.length} of ${dirs.length} projects`);
  return { wall_s: round2(wall), per_project_ms: Math.round(times.reduce((a, b) => a + b, 0) / times.length) };
}

// ---------- process memory ----------

const status = (pid: number | "self") => {
  try {
    return readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return "";
  }
};
const kib = (text: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);

/**
 * Samples this process's descendants' resident memory: the peak per program name (terraform, bwrap, git, …), in MiB.
 * Once a second: each scan of /proc costs ~5 ms of CPU on the app's own event loop, during plangate's half only
 * (every 250 ms it cost ~12 ms per project, 2 % of a plan, against plangate). Hundreds of terraform runs are still caught.
 */
function sampleChildren(): { stop(): Record<string, number> } {
  const peak: Record<string, number> = {};
  const tick = () => {
    const parents = new Map<number, number>();
    const names = new Map<number, string>();
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const text = status(Number(entry));
      const ppid = kib(text, "PPid");
      parents.set(Number(entry), ppid);
      names.set(Number(entry), /^Name:\s+(\S+)/m.exec(text)?.[1] ?? "?");
    }
    const ours = (pid: number) => {
      for (let p = parents.get(pid); p; p = parents.get(p)) if (p === process.pid) return true;
      return false;
    };
    for (const [pid, name] of names) {
      if (!ours(pid)) continue;
      const rss = kib(status(pid), "VmRSS") / 1024;
      if (rss > (peak[name] ?? 0)) peak[name] = Math.round(rss);
    }
  };
  const timer = setInterval(tick, 1000);
  return { stop: () => (clearInterval(timer), peak) };
}

/** Resets this process's VmHWM (peak RSS) so each size is measured on its own. */
function resetPeakRss(): void {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
  } catch {
    // an older kernel: the peak then covers the run so far
  }
}

// ---------- plangate ----------

/** Sum and count of a Prometheus histogram in /metrics, for label sets containing `label` (all when none). */
async function histogram(h: Harness, name: string, label = ""): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const total = (suffix: string) =>
    text
      .split("\n")
      .filter((l) => l.startsWith(`${name}_${suffix}`) && l.includes(label))
      .reduce((acc, l) => acc + Number(l.split(" ").at(-1)), 0);
  return { sum: total("sum"), count: total("count") };
}

/** Rows inserted, updated and deleted in the harness's database so far, per schema. */
async function rowsWritten(h: Harness): Promise<Record<string, number>> {
  await h.db.pool.query("select pg_stat_clear_snapshot()");
  const { rows } = await h.db.pool.query<{ schemaname: string; n: string }>("select schemaname, sum(n_tup_ins + n_tup_upd + n_tup_del)::bigint as n from pg_stat_user_tables group by 1");
  return Object.fromEntries(rows.map((r) => [r.schemaname, Number(r.n)]));
}

interface PullTiming {
  first_comment_s: number;
  all_plans_s: number;
  selection: { webhook_to_group_s: number; select_job_s: number };
  planning_phase_s: number;
  comments: number;
  github: { reads: number; writes: number; git: number };
  runs: { planned: number; reused: number; failed: number };
  /** ms after the webhook: the run group, the first run's start, the last run's end, each GitHub write. */
  timeline: string[];
}

const PUSH_ROUNDS = Number(process.env.BENCH_PUSH_ROUNDS ?? 1);
/** Rounds of plangate against bare per N (BENCH_RATIO_ROUNDS, default 1): see main. */
const RATIO_ROUNDS = Number(process.env.BENCH_RATIO_ROUNDS ?? 1);
/** The N whose run is followed by the pushes (BENCH_PUSH_AT, default 500). */
const PUSH_AT = Number(process.env.BENCH_PUSH_AT ?? 500);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let delivery = 0;

/** Makes the fake GitHub show the PR at `sha` changing `changed`, and delivers pull_request.ACTION for it as delivery `id`. */
async function deliverPull(h: Harness, number: number, sha: string, branch: string, baseSha: string, action: string, changed: string[], id: string): Promise<void> {
  const full = `${OWNER}/${NAME}`;
  h.fake.pullFiles.set(`${full}#${number}`, changed);
  h.fake.pulls.set(`${full}#${number}`, { headSha: sha, author: "Codertocat", headRef: branch, base: "main", baseSha });
  const payload = examplePayload("pull_request", action);
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  payload.pull_request.base.ref = "main";
  const res = await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET, id);
  if (res.status !== 200) throw new Error(`pull_request.${action} answered ${res.status}`);
}

/** Delivers pull_request.ACTION for the PR at `sha` and times it until `plangate/plan` completes and GitHub goes quiet. */
async function timePull(h: Harness, number: number, sha: string, branch: string, baseSha: string, action: string, changed: string[]): Promise<PullTiming> {
  const full = `${OWNER}/${NAME}`;
  const selectBefore = await histogram(h, "plangate_job_duration_seconds", 'task="plan-pull-request"');
  const commentsBefore = h.fake.commentsOn(full, number).length;
  const requestsBefore = h.fake.requests.length;
  const started = performance.now();
  const startedAt = Date.now();
  let firstComment: number | undefined;
  const watch = setInterval(() => {
    if (firstComment === undefined && h.fake.commentsOn(full, number).length > commentsBefore) firstComment = performance.now();
  }, 50);
  const id = `scale-${++delivery}-${Date.now()}`;
  await deliverPull(h, number, sha, branch, baseSha, action, changed, id);
  await waitFor("plangate/plan", () => h.fake.checkRuns.some((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 3_600_000);
  const allPlans = performance.now();
  if (firstComment === undefined && h.fake.commentsOn(full, number).length > commentsBefore) firstComment = allPlans;
  clearInterval(watch);
  // GitHub writes after the check (plangate/approval, a last comment edit) are the PR's too: wait until none came for 3 s.
  for (let seen = -1; seen !== h.fake.requests.length; ) {
    seen = h.fake.requests.length;
    await sleep(3000);
  }
  const requests = h.fake.requests.slice(requestsBefore);
  const api = requests.filter((r) => r.path.startsWith("/api/v3"));
  const selectAfter = await histogram(h, "plangate_job_duration_seconds", 'task="plan-pull-request"');
  const { rows: group } = await h.db.pool.query<{ s: number }>(
    "select extract(epoch from (g.created_at - d.received_at))::float8 as s from run_groups g, webhook_deliveries d where d.id = $1 and g.sha = $2 and g.pull_number = $3 order by g.id desc limit 1",
    [id, sha, number],
  );
  const { rows: span } = await h.db.pool.query<{ span: number }>("select extract(epoch from (max(finished_at) - min(started_at)))::float8 as span from runs where sha = $1 and kind = 'plan' and reused_from is null", [sha]);
  const { rows: runs } = await h.db.pool.query<{ status: string; reused: boolean; n: number }>(
    "select status, (reused_from is not null) as reused, count(*)::int as n from runs where sha = $1 and kind = 'plan' group by 1, 2",
    [sha],
  );
  const count = (f: (r: (typeof runs)[number]) => boolean) => runs.filter(f).reduce((a, r) => a + r.n, 0);
  const { rows: marks } = await h.db.pool.query<{ group_at: number; first_start: number; last_end: number }>(
    `select extract(epoch from g.created_at) * 1000 as group_at,
            (select extract(epoch from min(started_at)) * 1000 from runs where group_id = g.id and reused_from is null) as first_start,
            (select extract(epoch from max(finished_at)) * 1000 from runs where group_id = g.id and reused_from is null) as last_end
       from run_groups g where g.sha = $1 and g.pull_number = $2 order by g.id desc limit 1`,
    [sha, number],
  );
  const at = (ms: number | null | undefined) => (ms == null ? "?" : String(Math.round(Number(ms) - startedAt)));
  const timeline = [
    `group ${at(marks[0]?.group_at)}`,
    `run start ${at(marks[0]?.first_start)}`,
    `run end ${at(marks[0]?.last_end)}`,
    ...api.filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path.replace(`/api/v3/repos/${full}`, "").replace(/\/\d+$/, "/:id")} ${at(r.at)}`),
  ];
  return {
    first_comment_s: round2(((firstComment ?? allPlans) - started) / 1000),
    all_plans_s: round2((allPlans - started) / 1000),
    selection: { webhook_to_group_s: round2(group[0]?.s ?? NaN), select_job_s: round2(selectAfter.sum - selectBefore.sum) },
    planning_phase_s: round2(Number(span[0]?.span ?? 0)),
    comments: h.fake.commentsOn(full, number).length,
    github: { reads: api.filter((r) => r.method === "GET").length, writes: api.filter((r) => r.method !== "GET").length, git: requests.length - api.length },
    runs: { planned: count((r) => r.status === "succeeded" && !r.reused), reused: count((r) => r.status === "succeeded" && r.reused), failed: count((r) => r.status !== "succeeded") },
    timeline,
  };
}

/** plangate on an N-project repository: the PR changing modules/common; then (`push`) a push changing one project. */
/** The app on an N-project repository whose mirror is warm (the first fetch of a repository is a clone): a PR changing one project, planned and closed. */
async function warmRepo(n: number): Promise<{ h: Harness; repo: GitRepo; baseSha: string }> {
  // PLANGATE_PLAN_BATCH from the bench's environment, to compare batch sizes.
  const batch: Record<string, string> = process.env.PLANGATE_PLAN_BATCH ? { PLANGATE_PLAN_BATCH: process.env.PLANGATE_PLAN_BATCH } : {};
  const h = await startHarness({ PLANGATE_WORKERS: String(PARALLEL), PLANGATE_JOB_TIMEOUT: "600s", PLANGATE_MAX_PROJECTS: String(Math.max(2000, n)), ...batch });
  try {
    const repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
    const baseSha = repo.commit(repoFiles(n, 0));
    const warm = repo.commit({ "projects/p1/main.tf": project(1, 9) }, "warm");
    await timePull(h, 1, warm, "warm", baseSha, "opened", ["projects/p1/main.tf"]);
    await closePullRequest(h, 1, warm); // its project lock goes with it
    return { h, repo, baseSha };
  } catch (error) {
    await h.close();
    throw error;
  }
}

async function plangate(n: number, push: boolean) {
  const { h, repo, baseSha } = await warmRepo(n);
  try {
    const overheadBefore = await histogram(h, "plangate_plan_overhead_seconds");
    const planBefore = await histogram(h, "plangate_plan_duration_seconds");
    const rowsBefore = await rowsWritten(h);
    resetPeakRss();
    const sampler = sampleChildren();
    const sha = repo.commit({ "modules/common/main.tf": common(1) }, "shared");
    const all = await timePull(h, 2, sha, "shared", baseSha, "opened", ["modules/common/main.tf"]);
    const children = sampler.stop();
    const rss = { plangate_process_mib: Math.round(kib(status("self"), "VmHWM") / 1024), children_peak_mib: children };
    const rowsAfter = await rowsWritten(h);
    const overheadAfter = await histogram(h, "plangate_plan_overhead_seconds");
    const planAfter = await histogram(h, "plangate_plan_duration_seconds");
    const rows = Object.fromEntries(Object.keys(rowsAfter).map((k) => [k, rowsAfter[k]! - (rowsBefore[k] ?? 0)]));
    const { rows: runMs } = await h.db.pool.query<{ ms: number }>("select avg(extract(epoch from (finished_at - started_at)) * 1000)::float8 as ms from runs where sha = $1 and kind = 'plan'", [sha]);
    const perProject = {
      // started -> finished as the runs table says (startRun's transaction to finishRun's): the rest of a lane's time per project is the hop between jobs
      run_row_ms: Math.round(runMs[0]!.ms),
      // Observed for projects planned alone only: none when every project went in a batch.
      job_start_to_first_terraform_ms: overheadAfter.count > overheadBefore.count ? Math.round(((overheadAfter.sum - overheadBefore.sum) / (overheadAfter.count - overheadBefore.count)) * 1000) : "none alone",
      plan_ms: Math.round(((planAfter.sum - planBefore.sum) / (planAfter.count - planBefore.count)) * 1000),
      planning_phase_ms: Math.round((all.planning_phase_s / n) * 1000 * PARALLEL),
    };
    const pushes: PullTiming[] = [];
    for (let r = 0; push && r < PUSH_ROUNDS; r++) {
      const i = 7 + r;
      const pushed = repo.commit({ [`projects/p${i}/main.tf`]: project(i, 1) }, "shared");
      pushes.push(await timePull(h, 2, pushed, "shared", baseSha, "synchronize", ["modules/common/main.tf", ...Array.from({ length: r + 1 }, (_, k) => `projects/p${7 + k}/main.tf`)]));
    }
    if (h.fake.unexpected.length) throw new Error(`the fake GitHub was asked what it did not expect: ${h.fake.unexpected.join("; ")}`);
    return { all, rss, rows, perProject, pushes };
  } finally {
    await h.close();
  }
}

/** The selection alone at N projects: the PR changing modules/common, timed until its plan-pull-request job ends. */
async function selectionOnly(n: number) {
  const { h, repo, baseSha } = await warmRepo(n);
  try {
    const sha = repo.commit({ "modules/common/main.tf": common(1) }, "shared");
    const before = await histogram(h, "plangate_job_duration_seconds", 'task="plan-pull-request"');
    const id = `scale-select-${n}-${Date.now()}`;
    await deliverPull(h, 2, sha, "shared", baseSha, "opened", ["modules/common/main.tf"], id);
    let after = before;
    await waitFor("the selection job", async () => (after = await histogram(h, "plangate_job_duration_seconds", 'task="plan-pull-request"')).count > before.count, 600_000);
    const { rows } = await h.db.pool.query<{ s: number; runs: number }>(
      "select extract(epoch from (g.created_at - d.received_at))::float8 as s, (select count(*)::int from runs where group_id = g.id) as runs from run_groups g, webhook_deliveries d where d.id = $1 and g.sha = $2 order by g.id desc limit 1",
      [id, sha],
    );
    return { n, runs: rows[0]?.runs, select_job_s: round2(after.sum - before.sum), webhook_to_group_s: round2(rows[0]?.s ?? NaN) };
  } finally {
    await h.close();
  }
}

/** A repository of one project (with the shared modules): a PR changing it, timed as the push above is, then PUSH_ROUNDS - 1 pushes to it. */
async function oneProjectRepo(): Promise<PullTiming[]> {
  const h = await startHarness({ PLANGATE_WORKERS: String(PARALLEL) });
  try {
    const repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
    const baseSha = repo.commit(repoFiles(1, 0));
    const warm = repo.commit({ "projects/p0/main.tf": project(0, 9) }, "warm");
    await timePull(h, 1, warm, "warm", baseSha, "opened", ["projects/p0/main.tf"]);
    await closePullRequest(h, 1, warm);
    const timings: PullTiming[] = [];
    for (let r = 0; r < PUSH_ROUNDS; r++) {
      const sha = repo.commit({ "projects/p0/main.tf": project(0, 1 + r) }, "one");
      timings.push(await timePull(h, 2, sha, "one", baseSha, r === 0 ? "opened" : "synchronize", ["projects/p0/main.tf"]));
    }
    return timings;
  } finally {
    await h.close();
  }
}

async function main() {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  if (!sizes.length) sizes.push(100, 500, 2000);
  if (process.env.BENCH_SELECTION === "only") {
    for (const n of sizes) console.log(JSON.stringify(await selectionOnly(n)));
    return;
  }
  const tf = execFileSync("terraform", ["version"], { encoding: "utf8", env: { ...process.env, TF_CLI_CONFIG_FILE: "/dev/null" } }).split("\n")[0];
  console.log(JSON.stringify({ date: new Date().toISOString(), machine: `${os.hostname()}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`, terraform: tf, parallel: PARALLEL, sizes }));
  await barePlans(Math.min(20, sizes[0]!), 0); // terraform's binary into the page cache
  const table: string[] = [];
  let onePush: { pushes: PullTiming[]; singles: PullTiming[]; bareOne: number } | undefined;
  // BENCH_BARE=after: bare terraform only once, after plangate (halves the bare time of a large N).
  const bareBefore = process.env.BENCH_BARE !== "after";
  for (const n of sizes) {
    const bare = bareBefore ? await barePlans(n, 1) : undefined;
    if (bare) console.log(JSON.stringify({ n, bare }));
    const p = await plangate(n, n === PUSH_AT);
    console.log(JSON.stringify({ n, plangate: p }));
    // Bare again after plangate (the machine is shared; its load may have changed meanwhile): the ratio uses the mean.
    const bareAfter = await barePlans(n, 2);
    console.log(JSON.stringify({ n, bare_after: bareAfter }));
    const bareMean = bare ? (bare.wall_s + bareAfter.wall_s) / 2 : bareAfter.wall_s;
    const a = p.all;
    table.push(
      `| ${n} | ${a.selection.select_job_s} (${a.selection.webhook_to_group_s}) | ${a.first_comment_s} | ${a.all_plans_s} | ${a.planning_phase_s} | ${bare?.wall_s ?? "–"} / ${bareAfter.wall_s} | **${round2(a.all_plans_s / bareMean)}×** (${round2(a.planning_phase_s / bareMean)}×) | ${a.comments} | ${a.github.reads} / ${a.github.writes} | ${p.rss.plangate_process_mib} (tf ${p.rss.children_peak_mib.terraform ?? "?"}, bwrap ${p.rss.children_peak_mib.bwrap ?? "?"}) | ${Object.entries(p.rows).map(([k, v]) => `${k} ${v}`).join(", ")} | ${p.perProject.job_start_to_first_terraform_ms} / ${p.perProject.plan_ms} / ${bareAfter.per_project_ms} |`,
    );
    console.log(table.at(-1));
    // BENCH_RATIO_ROUNDS=K: K-1 more plangate runs, each followed by bare again, each compared with the mean of the
    // bare runs either side of it; the median of the K ratios is the figure a drifting machine cannot decide alone.
    if (RATIO_ROUNDS > 1) {
      const ratios = [round2(a.all_plans_s / bareMean)];
      let before = bareAfter.wall_s;
      for (let r = 1; r < RATIO_ROUNDS; r++) {
        const again = (await plangate(n, false)).all.all_plans_s;
        const after = (await barePlans(n, 10 + r)).wall_s;
        ratios.push(round2(again / ((before + after) / 2)));
        console.log(JSON.stringify({ n, round: r + 1, plangate_s: again, bare_before_s: before, bare_after_s: after, ratio: ratios.at(-1) }));
        before = after;
      }
      console.log(`| ${n} | all plans / bare, ${RATIO_ROUNDS} rounds: ${ratios.map((x) => `${x}×`).join(", ")} | median **${median(ratios)}×** |`);
    }
    if (p.pushes.length) {
      const singles = await oneProjectRepo();
      const bareOne = (await barePlans(1, 3)).wall_s;
      const { timeline: _a, ...push } = p.pushes[0]!;
      const { timeline: _b, ...single } = singles[0]!;
      console.log(JSON.stringify({ one_of_500_push: push, one_project_repo: single, bare_one_project_s: bareOne }));
      if (PUSH_ROUNDS > 1) {
        for (const [which, list] of [["push 1 of 500", p.pushes], ["1-project repo", singles]] as const) {
          list.forEach((t, r) => console.log(`${which} #${r + 1}: ${t.all_plans_s} s (${t.runs.planned} planned) | ${t.timeline.join(" | ")}`));
        }
      }
      onePush = { pushes: p.pushes, singles, bareOne };
    }
  }
  console.log("\n| projects | selection s: job (webhook→group) | first comment s | all plans s (webhook→check) | planning phase s | bare s (before / after) | plangate/bare: all plans (planning phase) | comments | GitHub reads / writes | peak RSS MiB: plangate process (terraform, bwrap) | Postgres rows written | per project ms: job→terraform / plan / bare (after) |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const row of table) console.log(row);
  if (onePush) {
    const { pushes, singles, bareOne } = onePush;
    const [push, single] = [pushes[0]!, singles[0]!];
    console.log(`\n| push changing 1 of 500 (after the full plan) | 1-project repository PR | ratio | bare 1 project |\n|---|---|---|---|\n| ${push.all_plans_s} s (${push.runs.planned} planned, ${push.runs.reused} reused; GitHub ${push.github.reads} reads / ${push.github.writes} writes) | ${single.all_plans_s} s | **${round2(push.all_plans_s / single.all_plans_s)}×** | ${bareOne} s |`);
    if (PUSH_ROUNDS > 1) {
      const [a, b] = [pushes.map((t) => t.all_plans_s), singles.map((t) => t.all_plans_s)];
      console.log(`\n| ${PUSH_ROUNDS} pushes changing 1 of 500 (s) | 1-project repository: PR, then pushes (s) | ratio of medians |\n|---|---|---|\n| ${a.join(", ")} (median ${median(a)}) | ${b.join(", ")} (median ${median(b)}) | **${round2(median(a) / median(b))}×** |`);
    }
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
