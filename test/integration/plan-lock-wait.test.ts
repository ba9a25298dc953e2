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
