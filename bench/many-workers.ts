// Many workers: one pull request of BENCH_PROJECTS (default 500) terraform_data
// projects, planned by BENCH_WORKERS (default 4) `plangate worker` processes
// (BENCH_WORKER_SLOTS jobs each, default 1) on one database, behind a server
// process that only receives the webhook; real bubblewrap sandbox, real
// terraform, the test suite's fake GitHub. Once a third of the plans are done,
// the first worker is killed (SIGKILL) while it plans; PLANGATE_WORKER_STALE_AFTER
// (BENCH_STALE_AFTER, default 5s) lets the others take its job over.
// Reports the wall time from the delivery to the plan check's completion, the
// plans each worker counted on its own /metrics (PLANGATE_METRICS_PORT), and
// projects per minute per core. Exit 1 if a plan did not succeed exactly once,
// a job is left, or the check run or comment is missing.
// Run: DATABASE_URL=postgres://root@127.0.0.1:5432/test npm run bench:many-workers
import { readFileSync } from "node:fs";
import os from "node:os";
import { freePort } from "../src/db/embedded.js";
import { WEBHOOK_SECRET } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";
import { deployment, descendantsOf, sleep, startProcess, type Started } from "./processes.js";

const PROJECTS = Number(process.env.BENCH_PROJECTS ?? 500);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const SLOTS = Number(process.env.BENCH_WORKER_SLOTS ?? 1);
const STALE_AFTER = process.env.BENCH_STALE_AFTER ?? "5s";
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT ?? 1800);
const REPO = "Codertocat/Hello-World";
const NUMBER = 7;

interface Worker extends Started {
  metricsPort: number;
}

/** A process's command line, or none once it is gone. */
function argv(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
}

/** Project plans this worker counted on its own /metrics (plangate_plan_duration_seconds_count, planned). */
async function plansOf(w: Worker): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^plangate_plan_duration_seconds_count\{[^}]*outcome="planned"[^}]*\} (\d+)$/gm)) sum += Number(m[1]);
  return sum;
}

async function waitUntil(what: string, check: () => Promise<unknown> | unknown, timeoutS = TIMEOUT_S): Promise<void> {
  const giveUpAt = performance.now() + timeoutS * 1000;
  while (!(await check())) {
    if (performance.now() > giveUpAt) throw new Error(`gave up waiting for ${what} after ${timeoutS} s`);
    await sleep(200);
  }
}

async function main() {
  const d = await deployment({ LOG_LEVEL: "error", PLANGATE_WORKER_STALE_AFTER: STALE_AFTER });
  const count = async (sql: string, params: unknown[] = []) => (await d.db.pool.query<{ n: number }>(sql, params)).rows[0]!.n;
  const violations: string[] = [];
  try {
    const repo = new GitRepo(d.fake.gitRoot, "Codertocat", "Hello-World");
    repo.commit({ "README.md": "root" });
    const dirs = Array.from({ length: PROJECTS }, (_, i) => `p${String(i).padStart(4, "0")}`);
    const sha = repo.commit(Object.fromEntries(dirs.map((dir) => [`${dir}/main.tf`, `resource "terraform_data" "r" {\n  count = 3\n  input = "${dir}-\${count.index}"\n}\n`])), "many");
    d.fake.pullFiles.set(`${REPO}#${NUMBER}`, dirs.map((dir) => `${dir}/main.tf`));
    d.fake.pulls.set(`${REPO}#${NUMBER}`, { headSha: sha });

    const server = await startProcess(d, "start", { PLANGATE_WORKERS: "0" });
    const workers: Worker[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const metricsPort = await freePort();
      workers.push({ ...(await startProcess(d, "worker", { PLANGATE_WORKERS: String(SLOTS), PLANGATE_METRICS_PORT: String(metricsPort) })), metricsPort });
    }
    // Each process beats for its pool and each of its queue workers once it takes jobs.
    await waitUntil("the workers", async () => (await count("select count(*)::int as n from worker_heartbeats")) >= WORKERS * (1 + SLOTS), 120);

    const payload = examplePayload("pull_request", "opened");
    Object.assign(payload.pull_request, { number: NUMBER, draft: false });
    payload.pull_request.head.sha = sha;
    const start = performance.now();
    const res = await deliver(server.url!, "pull_request", payload, WEBHOOK_SECRET);
    if (res.status !== 200) throw new Error(`the delivery was answered ${res.status}`);

    const succeeded = () => count("select count(*)::int as n from runs where kind = 'plan' and status = 'succeeded' and sha = $1", [sha]);
    const victim = workers[0]!;
    // Killed while terraform *plans* (not while it shows a finished plan): its job cannot finish, and be
    // counted, between the read of its /metrics and the kill.
    const planning = () => descendantsOf(victim.pid).some((p) => p.comm === "terraform" && argv(p.pid).includes("plan"));
    let victimPlans = -1;
    await waitUntil("a third of the plans, the first worker planning", async () => {
      if ((await succeeded()) < PROJECTS / 3 || !planning()) return false;
      victimPlans = await plansOf(victim);
      return planning();
    });
    const killedAt = (performance.now() - start) / 1000;
    const exited = new Promise((r) => victim.child.once("exit", r));
    victim.child.kill("SIGKILL");
    await exited;
    console.error(`killed worker 0 at ${killedAt.toFixed(1)} s, after ${victimPlans} plans of its own`);

    const checked = () => d.fake.checkRuns.some((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed");
    await waitUntil("plangate/plan", checked);
    const wallSeconds = (performance.now() - start) / 1000;
    await waitUntil("the queue to drain", async () => (await count("select count(*)::int as n from graphile_worker.jobs")) === 0, 120).catch((e) => violations.push(String(e)));

    const statuses = (await d.db.pool.query<{ status: string; n: number }>("select status, count(*)::int as n from runs where kind = 'plan' and sha = $1 group by 1", [sha])).rows;
    if (statuses.length !== 1 || statuses[0]!.status !== "succeeded" || statuses[0]!.n !== PROJECTS) violations.push(`plan runs by status: ${JSON.stringify(statuses)}`);
    const doubled = await count("select count(*)::int as n from (select run_id from audit_events where action = 'plan.succeeded' group by run_id having count(*) > 1) x");
    if (doubled) violations.push(`${doubled} runs audited as succeeded twice`);
    const checks = d.fake.checkRuns.filter((c) => c.head_sha === sha && c.name === "plangate/plan");
    if (checks.length !== 1 || checks[0]!.conclusion !== "success") violations.push(`plangate/plan check runs: ${JSON.stringify(checks.map((c) => c.conclusion))}`);
    if (!d.fake.commentsOn(REPO, NUMBER).some((c) => c.body.includes(`plangate plan for \`${sha.slice(0, 7)}\``))) violations.push("no plan comment");
    if (d.fake.unexpected.length) violations.push(`${d.fake.unexpected.length} unexpected GitHub requests, e.g. ${d.fake.unexpected[0]}`);

    const plansPerWorker = [victimPlans, ...(await Promise.all(workers.slice(1).map(plansOf)))];
    const counted = plansPerWorker.reduce((a, b) => a + b, 0);
    if (counted !== PROJECTS) violations.push(`the workers' /metrics count ${counted} plans, not ${PROJECTS}`);
    const cores = os.cpus().length;
    const perMinutePerCore = PROJECTS / (wallSeconds / 60) / cores;
    console.log(JSON.stringify({
      date: new Date().toISOString(),
      machine: { cores, memoryGiB: Math.round(os.totalmem() / 1024 ** 3) },
      projects: PROJECTS,
      workers: WORKERS,
      slotsPerWorker: SLOTS,
      staleAfter: STALE_AFTER,
      killed: { worker: 0, atSeconds: +killedAt.toFixed(1), plansBefore: victimPlans },
      wallSeconds: +wallSeconds.toFixed(1),
      plansPerWorker,
      projectsPerMinute: +(PROJECTS / (wallSeconds / 60)).toFixed(1),
      projectsPerMinutePerCore: +perMinutePerCore.toFixed(1),
      violations,
    }, null, 2));
  } finally {
    await d.close();
  }
  if (violations.length) process.exit(1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
