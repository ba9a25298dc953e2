import { jest } from "@jest/globals";
import { acquireProjectLocks } from "../../src/db/project-locks.js";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

/**
 * A plan of a project that an apply holds locked gives its worker slot back
 * and comes again: with one slot, another project's plan runs meanwhile,
 * and the locked one plans once the lock is free.
 */
jest.setTimeout(300_000);

let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "1" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  prs = new PullRequests(h, repo);
  repo.commit({ "a/main.tf": 'resource "terraform_data" "a" {}\n', "b/main.tf": 'resource "terraform_data" "b" {}\n' });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

const runStatus = async (sha: string, project: string) =>
  (await h.db.pool.query<{ status: string }>("select status from runs where sha = $1 and project = $2", [sha, project])).rows[0]?.status;

engineTest("with one worker slot, a plan waiting for an apply's lock lets another project's plan run, then plans itself", async () => {
  // The test plays the apply: it holds project a's lock, as a running apply does.
  const apply = (await acquireProjectLocks(h.db.pool, [{ repo: "Codertocat/Hello-World", project: "a", workspace: "default" }]))!;
  let p;
  try {
    p = await prs.openNoWait({ "a/main.tf": 'resource "terraform_data" "a" {\n  input = "v2"\n}\n', "b/main.tf": 'resource "terraform_data" "b" {\n  input = "v2"\n}\n' }, ["a/main.tf", "b/main.tf"]);
    const sha = p.sha;
    // b plans in the one slot while a waits: a's job did not keep the slot.
    await waitFor("b's plan", async () => (await runStatus(sha, "b")) === "succeeded", 120_000);
    expect(await runStatus(sha, "a")).toBe("queued");
    expect(prs.check("plangate/plan", sha)?.status).not.toBe("completed");
  } finally {
    await apply.release();
  }
  await waitFor("plangate/plan", () => prs.check("plangate/plan", p.sha)?.status === "completed", 120_000);
  await queueDrained(h.db);
  expect(await runStatus(p.sha, "a")).toBe("succeeded");
  expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
  const started = (await prs.audit(p)).filter((e) => e.action === "plan.started");
  expect(started.map((e) => e.details.dir).sort()).toEqual(["a", "b"]); // a started once, when it got its lock
  expect(prs.comments(p).at(-1)).toContain("terraform_data.a");
});

engineTest("a second job for a run another job is planning (a trigger queued it again) waits for it rather than planning it again; a run left behind is taken over", async () => {
  // Project c: a and b stay locked by the PR above.
  const p = await prs.open({ "c/main.tf": 'resource "terraform_data" "c" {}\n' }, ["c/main.tf"]);
  const { rows } = await h.db.pool.query<{ id: number; installation_id: number }>("select r.id, g.installation_id from runs r join run_groups g on g.id = r.group_id where r.sha = $1 and r.project = 'c'", [p.sha]);
  const run = rows[0]!;
  const events = async (action: string) => (await prs.audit(p)).filter((e) => e.action === action).length;
  const secondJob = () => h.db.pool.query("select graphile_worker.add_job('plan-project', $1::json, max_attempts => 3)", [JSON.stringify({ runId: run.id, installationId: run.installation_id })]);
  // The test plays the job that is planning it: the run is running, and its project lock is held (as during a plan).
  await h.db.pool.query("update runs set status = 'running', started_at = now() where id = $1", [run.id]);
  const planning = (await acquireProjectLocks(h.db.pool, [{ repo: "Codertocat/Hello-World", project: "c", workspace: "default" }]))!;
  const requests = h.fake.requests.length;
  await secondJob();
  // The lock comes free before the other job has stored its plan (it stores it after unlocking): the second job gets it then.
  await waitFor("the second job to wait for the lock", async () => (await h.db.pool.query("select 1 from graphile_worker.jobs where task_identifier = 'plan-project' and locked_at is not null")).rowCount === 1, 60_000);
  await planning.release();
  // It comes back while the run is running, and plans nothing.
  await waitFor("the second job to come back", async () => (await h.db.pool.query("select 1 from graphile_worker.jobs where key = $1 and run_at > now()", [`plan-run:${run.id}`])).rowCount === 1, 60_000);
  expect(await runStatus(p.sha, "c")).toBe("running");
  expect([await events("plan.started"), await events("plan.succeeded")]).toEqual([1, 1]);
  // The other job stores its result: the second one, back again, finds the run finished and ends.
  await h.db.pool.query("update runs set status = 'succeeded' where id = $1", [run.id]);
  await queueDrained(h.db);
  expect([await events("plan.started"), await events("plan.succeeded")]).toEqual([1, 1]);
  expect(h.fake.requests.slice(requests).filter((r) => r.method !== "GET" && !r.path.includes("/access_tokens"))).toEqual([]);

  // A run still "running" a day after it began (its worker died and its job is gone): the next job plans it.
  await h.db.pool.query("update runs set status = 'running', started_at = now() - interval '1 day' where id = $1", [run.id]);
  await secondJob();
  await queueDrained(h.db);
  expect(await runStatus(p.sha, "c")).toBe("succeeded");
  expect([await events("plan.started"), await events("plan.succeeded")]).toEqual([1, 2]);
});
