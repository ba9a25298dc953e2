import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { freePort } from "../../src/db/embedded.js";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { terraformPid } from "../support/processes.js";
import { PullRequests } from "../support/pull-requests.js";
import { batchSize } from "../../src/jobs/plan-jobs.js";

jest.setTimeout(300_000);

const REPO = "Codertocat/Hello-World";
const WORKERS = 4;
const SMALL = 39;
let h: Harness;
let repo: GitRepo;
interface Worker {
  child: ChildProcess;
  metricsPort: number;
}
const workers: Worker[] = [];

/**
 * Scaled out: the app here only receives webhooks; four `plangate worker`
 * processes (own process group, own data dir, own metrics port, one job at
 * a time) share its database and key. A worker silent for 2 s is presumed
 * dead (PLANGATE_WORKER_STALE_AFTER): its jobs are unlocked by the others.
 */
beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "0" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  for (let i = 0; i < WORKERS; i++) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `plangate-worker${i}-`));
    chmodSync(dataDir, 0o755);
    const metricsPort = await freePort();
    const child = spawn("node", ["bin/plangate.js", "worker"], {
      env: { ...process.env, ...h.env, PLANGATE_WORKERS: "1", PLANGATE_WORKER_STALE_AFTER: "2s", PLANGATE_DATA_DIR: dataDir, PLANGATE_METRICS_PORT: String(metricsPort), LOG_LEVEL: "error" },
      stdio: ["ignore", "ignore", "inherit"],
      detached: true,
    });
    workers.push({ child, metricsPort });
  }
  // Each process beats for its pool and its one queue worker once it takes jobs.
  await waitFor("every worker taking jobs", async () => (await h.db.pool.query("select count(*)::int as n from worker_heartbeats")).rows[0].n >= 2 * WORKERS, 60_000);
});
afterAll(async () => {
  await Promise.all(workers.map(({ child }) => kill(child, "SIGTERM")));
  await h?.close();
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** Signals a worker's process group (SIGKILL: it and everything it started); resolves once it has exited. */
function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    process.kill(signal === "SIGKILL" ? -child.pid! : child.pid!, signal);
  } catch {
    // already gone
  }
  return exited;
}

/** The sum of a counter's (or histogram's `_count`) samples in a worker's /metrics whose labels include `labels`. */
async function scraped(worker: Worker, series: string, labels = ""): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^(\w+)\{([^}]*)\} (\d+)$/.exec(line);
    if (m && m[1] === series && m[2]!.includes(labels)) sum += Number(m[3]);
  }
  return sum;
}
/** Per worker: project plans and plan-project jobs it finished. */
const workDone = async (w: Worker) => ({
  plans: await scraped(w, "plangate_plan_duration_seconds_count", 'outcome="planned"'),
  jobs: await scraped(w, "plangate_job_duration_seconds_count", 'task="plan-project",outcome="ok"'),
});

const project = (tag: string, count: number) => `resource "terraform_data" "r" {\n  count = ${count}\n  input = "${tag}-\${count.index}"\n}\n`;

describe("four worker processes on one database, one of them killed", () => {
  engineTest("a PR of 40 projects: a worker killed mid-plan, every plan still runs to success once, one comment, and the workers' metrics add up", async () => {
    const dirs = Array.from({ length: SMALL }, (_, i) => `p${String(i).padStart(2, "0")}`);
    // One project slow enough (thousands of resources) that its worker can be caught planning it.
    const files: Record<string, string | null> = Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, project(d, 3)]));
    files["big/main.tf"] = project("big", 8000);
    const { number, sha } = await new PullRequests(h, repo, "Codertocat", 50).openNoWait(files, [...dirs, "big"].map((d) => `${d}/main.tf`));

    // The event: terraform planning `big`, started by one of the worker processes. That one is killed.
    // Another test file may be planning a `big` of its own meanwhile: only a descendant of these workers counts.
    const victim = await waitFor("a worker planning `big`", () => workers.find((w) => terraformPid("big", "plan", w.child.pid!) !== undefined), 180_000);
    // Not finished: running, or still queued while a batch's shared sandbox entry plans it (runs begin once their entry ends).
    const { rows: [bigRun] } = await h.db.pool.query("select status from runs where sha = $1 and project = 'big'", [sha]);
    expect(["queued", "running"]).toContain(bigRun.status);
    // One job at a time: while `big` plans, what this worker has finished cannot change.
    const victimDone = await workDone(victim);
    await kill(victim.child, "SIGKILL");

    await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 240_000);
    await queueDrained(h.db);

    // Every plan ran to success exactly once, and nothing is left in the queue or running.
    const { rows: runs } = await h.db.pool.query("select id, project, status from runs where kind = 'plan' and sha = $1", [sha]);
    expect(runs.map((r) => `${r.project}:${r.status}`).sort()).toEqual([...dirs, "big"].map((d) => `${d}:succeeded`).sort());
    const { rows: audited } = await h.db.pool.query(
      "select run_id, array_agg(action order by id) as actions from audit_events where run_id = any($1) and action like 'plan.%' group by run_id",
      [runs.map((r) => r.id)],
    );
    expect(audited).toHaveLength(runs.length);
    for (const a of audited) expect(a.actions).toEqual(["plan.started", "plan.succeeded"]);
    expect((await h.db.pool.query("select count(*)::int as n from graphile_worker.jobs")).rows[0].n).toBe(0);

    const checks = h.fake.checkRuns.filter((c) => c.head_sha === sha && c.name === "plangate/plan");
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({ status: "completed", conclusion: "success" });
    const said = h.fake.commentsOn(REPO, number).map((c) => asShown(c.body)).join("\n");
    expect(said).toContain(`plangate plan for \`${sha.slice(0, 7)}\``);
    for (const d of dirs) expect(said).toContain(`| \`${d}\` | \`default\` | ✅ planned | 3 | 0 | 0 | 0 |`);
    expect(said).toContain("| `big` | `default` | ✅ planned | 8000 | 0 | 0 | 0 |");
    expect(h.fake.commentsOn(REPO, number).filter((c) => c.body.includes("<!-- plangate:plan part=1 -->"))).toHaveLength(1);

    // Each surviving process's /metrics counts the plans it ran; with the dead one's, they add up to every plan.
    const survivors = await Promise.all(workers.filter((w) => w !== victim).map(workDone));
    const sum = (key: "plans" | "jobs") => survivors.reduce((n, s) => n + s[key], victimDone[key]);
    expect(sum("plans")).toBe(SMALL + 1);
    // Forty runs go two to a job (plan-jobs.ts); a batch that handed its second run back to the queue made one job more.
    const batches = Math.ceil((SMALL + 1) / batchSize(SMALL + 1));
    expect(batchSize(SMALL + 1)).toBe(2);
    expect(sum("jobs")).toBeGreaterThanOrEqual(batches);
    expect(sum("jobs")).toBeLessThanOrEqual(2 * batches);
    // `big`'s plan was finished by a survivor, so at least one survivor counted plans of its own.
    expect(survivors.some((s) => s.plans > 0)).toBe(true);
  });
});
