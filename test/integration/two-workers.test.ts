import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { closePullRequest, engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(300_000);

const REPO = "Codertocat/Hello-World";
let h: Harness;
let repo: GitRepo;
const workers: { child: ChildProcess; dataDir: string }[] = [];

/**
 * Scaled out: the app here only receives webhooks; two `plangate worker`
 * processes, each with its own data dir and one job at a time, share its
 * database and encryption key (h.env).
 */
beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "0" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  for (let i = 0; i < 2; i++) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `plangate-worker${i}-`));
    chmodSync(dataDir, 0o755);
    const child = spawn("node", ["bin/plangate.js", "worker"], {
      // A worker silent for 3 s is presumed dead: far shorter than the slowest plan below.
      env: { ...process.env, ...h.env, PLANGATE_WORKERS: "1", PLANGATE_WORKER_STALE_AFTER: "3s", PLANGATE_DATA_DIR: dataDir, LOG_LEVEL: "error" },
      stdio: ["ignore", "ignore", "inherit"],
    });
    workers.push({ child, dataDir });
  }
});
/** Stops the worker processes as a deploy does (SIGTERM): each finishes the jobs it is running first. */
const stopWorkers = () => Promise.all(workers.map(({ child }) => new Promise((r) => (child.exitCode !== null ? r(null) : (child.once("exit", r), child.kill("SIGTERM"))))));
afterAll(async () => {
  await stopWorkers();
  await h?.close();
  for (const { dataDir } of workers) rmSync(dataDir, { recursive: true, force: true });
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** A terraform_data project of `count` resources (local state: every plan creates them). */
const project = (tag: string, count: number) => `resource "terraform_data" "r" {\n  count = ${count}\n  input = "${tag}-\${count.index}"\n}\n`;
const comments = (n: number) => h.fake.commentsOn(REPO, n).map((c) => asShown(c.body));
/** The plan comment's first part (a large plan is laid out in several). */
const firstPart = (n: number) => h.fake.commentsOn(REPO, n).filter((c) => c.body.includes("<!-- plangate:plan part=1 -->")).map((c) => asShown(c.body));
const planCheck = (sha: string) => h.fake.checkRuns.filter((c) => c.name === "plangate/plan" && c.head_sha === sha);

/** Delivers pull_request.<action> for a PR whose head is `sha`, as GitHub does (`id`: the X-GitHub-Delivery). */
async function send(action: string, number: number, sha: string, changed: string[], id?: string) {
  h.fake.pullFiles.set(`${REPO}#${number}`, changed);
  h.fake.pulls.set(`${REPO}#${number}`, { headSha: sha });
  const payload = examplePayload("pull_request", action);
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  const res = await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET, id);
  expect(res.status).toBe(200);
}

const planned = (sha: string) => waitFor(`plangate/plan on ${sha.slice(0, 7)}`, () => planCheck(sha).find((c) => c.status === "completed"), 180_000);

describe("two worker processes on one database", () => {
  engineTest("five PRs of three projects each, every delivery sent twice: each plan runs once, one comment and one check per PR, both workers take jobs", async () => {
    const prs = [11, 12, 13, 14, 15].map((number) => {
      const dirs = ["a", "b", "c"].map((p) => `pr${number}-${p}`);
      const sha = repo.commit(Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, project(d, 5)])), `pr-${number}`);
      return { number, sha, dirs };
    });
    // Sent together, and each delivery again with the same X-GitHub-Delivery (GitHub redelivers).
    await Promise.all(prs.flatMap((p) => {
      const id = `two-workers-${p.number}`;
      const changed = p.dirs.map((d) => `${d}/main.tf`);
      return [send("opened", p.number, p.sha, changed, id), send("opened", p.number, p.sha, changed, id)];
    }));
    for (const p of prs) await planned(p.sha);
    await queueDrained(h.db);

    for (const p of prs) {
      const said = comments(p.number);
      expect(said).toHaveLength(1);
      expect(said[0]).toContain(`plangate plan for \`${p.sha.slice(0, 7)}\``);
      for (const d of p.dirs) expect(said[0]).toContain(`| \`${d}\` | \`default\` | ✅ planned | 5 | 0 | 0 | 0 |`);
      expect(planCheck(p.sha)).toHaveLength(1);
      expect(planCheck(p.sha)[0]).toMatchObject({ status: "completed", conclusion: "success" });
    }
    const { rows: runs } = await h.db.pool.query("select id, sha, project, status from runs where kind = 'plan' and pull_number between 11 and 15 order by id");
    expect(runs.map((r) => `${r.sha}:${r.project}:${r.status}`).sort()).toEqual(prs.flatMap((p) => p.dirs.map((d) => `${p.sha}:${d}:succeeded`)).sort());
    const { rows: audited } = await h.db.pool.query(
      `select run_id, array_agg(action order by id) as actions from audit_events where run_id = any($1) and action like 'plan.%' group by run_id`,
      [runs.map((r) => r.id)],
    );
    expect(audited).toHaveLength(runs.length);
    for (const a of audited) expect(a.actions).toEqual(["plan.started", "plan.succeeded"]);
    const { rows: deliveries } = await h.db.pool.query("select count(*)::int as n from webhook_deliveries where id like 'two-workers-%'");
    expect(deliveries[0].n).toBe(prs.length);
    // Each worker fetched into a mirror of its own data dir: both ran plans.
    for (const w of workers) expect(existsSync(path.join(w.dataDir, "mirrors", "Codertocat", "Hello-World.git"))).toBe(true);
    // The export a planning job begins is gone once its group is done, also where the projects ran in the other process;
    // each process keeps the repository's last one (one at most), to derive its next export from.
    const groupExports = (dir: string) => readdirSync(path.join(dir, "exports")).filter((name) => !name.startsWith(".kept-"));
    const kept = (dir: string) => readdirSync(path.join(dir, "exports")).filter((name) => name.startsWith(".kept-"));
    // The export kept before is removed just after the next one is kept in its place: wait for both.
    await waitFor("every group's export gone, one kept at most", () => workers.every((w) => groupExports(w.dataDir).length === 0 && kept(w.dataDir).length <= 1), 30_000);
    for (const w of workers) expect(kept(w.dataDir).length).toBeLessThanOrEqual(1);
  });

  engineTest("a project's lock holds across the processes: the second PR is refused naming the holder, and gets the lock once the holder closes", async () => {
    const first = { number: 21, sha: repo.commit({ "shared/main.tf": project("first", 10) }, "pr-21") };
    await send("opened", first.number, first.sha, ["shared/main.tf"]);
    await planned(first.sha);
    const second = { number: 22, sha: repo.commit({ "shared/main.tf": project("second", 20) }, "pr-22") };
    await send("opened", second.number, second.sha, ["shared/main.tf"]);
    expect(await planned(second.sha)).toMatchObject({ conclusion: "failure" });
    await queueDrained(h.db);
    expect(comments(second.number).at(-1)).toContain("`shared` (workspace `default`) is locked by #21");
    const refused = await h.db.pool.query("select details from audit_events where pull_number = 22 and action = 'plan.failed'");
    expect(refused.rows.map((r) => r.details)).toEqual([expect.objectContaining({ stage: "lock", holder: 21 })]);

    await closePullRequest(h, first.number, first.sha);
    const again = repo.commit({ "shared/extra.tf": "# a push\n" }, "pr-22");
    await send("synchronize", second.number, again, ["shared/main.tf", "shared/extra.tf"]);
    expect(await planned(again)).toMatchObject({ conclusion: "success" });
    await queueDrained(h.db);
    expect(comments(second.number).at(-1)).toContain("| `shared` | `default` | ✅ planned | 20 | 0 | 0 | 0 |");
    const { rows: locks } = await h.db.pool.query("select project, pull_number from locks where project = 'shared'");
    expect(locks).toEqual([{ project: "shared", pull_number: 22 }]);
  });

  engineTest("pushes of one PR planned by either process: the plans of one project never overlap", async () => {
    const number = 31;
    const shas: string[] = [];
    for (let i = 0; i < 4; i++) shas.push(repo.commit({ "serial/main.tf": project(`push${i}`, 2000) }, "pr-31"));
    // Four pushes delivered back to back, without waiting for plans: their plans queue up for the two processes.
    for (const sha of shas) await send("synchronize", number, sha, ["serial/main.tf"]);
    await planned(shas.at(-1)!);
    await queueDrained(h.db);
    const { rows } = await h.db.pool.query("select started_at, finished_at from runs where kind = 'plan' and project = 'serial' and started_at is not null order by started_at");
    expect(rows.length).toBeGreaterThan(0);
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1].finished_at.getTime()).toBeLessThanOrEqual(rows[i].started_at.getTime());
    expect(firstPart(number)).toHaveLength(1);
    expect(firstPart(number)[0]).toContain(`plangate plan for \`${shas.at(-1)!.slice(0, 7)}\``);
  });

  // Last: it stops the worker processes.
  engineTest("a plan that outlasts PLANGATE_WORKER_STALE_AFTER on a live worker is not taken over by the other process: it runs once", async () => {
    const number = 41;
    const sha = repo.commit({ "long/main.tf": project("long", 12000) }, "pr-41");
    await send("opened", number, sha, ["long/main.tf"]);
    // While it runs, its job stays with the process that took it: never a second attempt elsewhere.
    let attempts = 0;
    await waitFor("plangate/plan on the long plan", async () => {
      const { rows } = await h.db.pool.query<{ n: number }>("select coalesce(max(attempts), 0)::int as n from graphile_worker.jobs where task_identifier = 'plan-project'");
      attempts = Math.max(attempts, rows[0]!.n);
      return planCheck(sha).find((c) => c.status === "completed");
    }, 180_000);
    expect(attempts).toBe(1);
    expect(planCheck(sha)).toMatchObject([{ conclusion: "success" }]);
    await queueDrained(h.db);
    // 12,000 resources take terraform several times the 3 s (about 10 s on 2 cores).
    const { rows: runs } = await h.db.pool.query("select id from runs where kind = 'plan' and sha = $1", [sha]);
    expect(runs).toHaveLength(1);
    // Whatever either process still runs finishes before it exits: a second attempt of the plan would show now.
    await stopWorkers();
    const { rows } = await h.db.pool.query("select action from audit_events where run_id = $1 and action like 'plan.%' order by id", [runs[0].id]);
    expect(rows.map((r) => r.action)).toEqual(["plan.started", "plan.succeeded"]);
    expect(firstPart(number)).toHaveLength(1);
    expect(firstPart(number)[0]).toContain("| `long` | `default` | ✅ planned | 12000 | 0 | 0 | 0 |");
  });
});
