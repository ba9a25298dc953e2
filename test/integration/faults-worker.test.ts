import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { engineTest, enginesWork, queueDrained, startHarness, toolTest, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { terraformPid } from "../support/processes.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(170_000);

/**
 * A plan's own machinery failing under it: terraform killed by a signal, the
 * data directory full. The project fails with a clear message (comment, failed
 * plangate/plan, plan.failed audit event), plangate's advisory project lock
 * does not outlive it, and the next push plans normally.
 */
const REPO = "Codertocat/Hello-World";
let h: Harness;
let repo: GitRepo;
/** The data directory: a small tmpfs of its own, so the test can fill it (as root; else a plain directory). */
const dataDir = mkdtempSync(path.join(os.tmpdir(), "plangate-faults-data-"));
const mounted = (() => {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=96m,mode=755", "tmpfs", dataDir], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

beforeAll(async () => {
  chmodSync(dataDir, 0o755);
  h = await startHarness({ PLANGATE_DATA_DIR: dataDir, PLANGATE_WORKERS: "1" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
});
afterAll(async () => {
  await h?.close();
  if (mounted) execFileSync("umount", ["-l", dataDir]);
  rmSync(dataDir, { recursive: true, force: true });
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** `count` terraform_data resources in `dir` (local state: each run's checkout starts without one). */
const resources = (dir: string, count: number) => ({ [`${dir}/main.tf`]: `resource "terraform_data" "r" {\n  count = ${count}\n  input = "\${count.index}"\n}\n` });

/** Pushes `files` to PR `n` (opened the first time, synchronize after) and returns the head sha. */
async function push(n: number, files: Record<string, string>, action: "opened" | "synchronize"): Promise<string> {
  const sha = repo.commit(files, `faults-${n}`);
  h.fake.pullFiles.set(`${REPO}#${n}`, Object.keys(files));
  h.fake.pulls.set(`${REPO}#${n}`, { headSha: sha });
  const payload = examplePayload("pull_request", action);
  Object.assign(payload.pull_request, { number: n, draft: false });
  payload.pull_request.head.sha = sha;
  expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);
  return sha;
}

async function outcome(n: number, sha: string) {
  const check = await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 150_000);
  await queueDrained(h.db);
  const audit = await h.db.pool.query("select action, details from audit_events where sha = $1 and action like 'plan.%' order by id", [sha]);
  const locks = await h.db.pool.query("select project from locks where pull_number = $1", [n]);
  const advisory = await h.db.pool.query("select count(*)::int as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())");
  return { check, comment: asShown(h.fake.commentsOn(REPO, n).at(-1)?.body ?? ""), audit: audit.rows, locks: locks.rows, advisoryLocks: advisory.rows[0].n as number };
}

/** The failed run's outcome, then a new push that plans normally. */
async function expectFailedThenRecovers(n: number, sha: string, dir: string, says: RegExp) {
  const failed = await outcome(n, sha);
  expect(failed.check.conclusion).toBe("failure");
  expect(failed.comment).toContain(`| \`${dir}\` | \`default\` | ❌ failed |`);
  expect(failed.comment).toMatch(says);
  expect(failed.audit.map((r) => r.action)).toEqual(["plan.started", "plan.failed"]);
  // The PR keeps its own lock on the project (DESIGN: held until merge, close or /unlock); nothing else is held.
  expect(failed.locks).toEqual([{ project: dir }]);
  expect(failed.advisoryLocks).toBe(0);

  const next = await push(n, resources(dir, 2), "synchronize");
  const ok = await outcome(n, next);
  expect(ok.check.conclusion).toBe("success");
  expect(ok.comment).toContain(`| \`${dir}\` | \`default\` | ✅ planned | 2 | 0 | 0 | 0 |`);
  expect(ok.audit.map((r) => r.action)).toEqual(["plan.started", "plan.succeeded"]);
  expect(ok.locks).toEqual([{ project: dir }]);
  expect(ok.advisoryLocks).toBe(0);
}

describe("a plan's machinery failing", () => {
  engineTest("terraform killed by a signal mid-plan: the project fails saying so, the next push plans", async () => {
    const sha = await push(61, resources("killed", 15000), "opened");
    const pid = await waitFor("terraform plan to run", () => terraformPid("killed", "plan", process.pid), 120_000);
    process.kill(pid, "SIGKILL");
    await expectFailedThenRecovers(61, sha, "killed", /terraform plan failed: killed by signal SIGKILL/);
  });

  // In CI (root, as .ci/run runs) the tmpfs must be there: a run that cannot mount it fails rather than pass unrun.
  toolTest(mounted && enginesWork(), "terraform, bubblewrap and a tmpfs on the data directory (root)", "the data directory full: the project fails saying so, the next push plans once space is free", async () => {
    const filler = path.join(dataDir, "filler");
    // The test holds the project's lock, so its plan cannot start (it comes again while the project is locked,
    // nothing checked out yet) until the disk is full.
    const holder = await h.db.pool.connect();
    await holder.query("select pg_advisory_lock(7263002, hashtext($1))", [JSON.stringify([REPO, "full", "default"])]);
    try {
      const sha = await push(62, resources("full", 1), "opened");
      await waitFor("the plan to be queued behind the project's lock", async () => (await h.db.pool.query("select status from runs where sha = $1", [sha])).rows[0]?.status === "queued", 60_000);
      await waitFor("the plan to find the project locked", async () => (await h.db.pool.query("select 1 from graphile_worker.jobs where key = $1 and run_at > now() and attempts = 0", [`plan-run:${(await h.db.pool.query<{ id: number }>("select id from runs where sha = $1", [sha])).rows[0]!.id}`])).rowCount === 1, 60_000);
      // Fill what is free, leaving nothing for the checkout, the plan or its output.
      const free = Number(execFileSync("df", ["--output=avail", "-B1", dataDir], { encoding: "utf8" }).split("\n")[1]);
      try {
        writeFileSync(filler, Buffer.alloc(free));
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOSPC") throw error; // full either way
      }
      await holder.query("select pg_advisory_unlock_all()");
      await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 150_000);
      rmSync(filler);
      await expectFailedThenRecovers(62, sha, "full", /no space left on device/i);
    } finally {
      holder.release();
      rmSync(filler, { force: true });
    }
  });
});
