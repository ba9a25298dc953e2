import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";

/**
 * GitHub's pace (a second between writes, as in production) and a push that
 * arrives while the previous head's report is still writing: the new head's
 * plan and comment do not wait behind the old head's writes: the old head's
 * writes still to come (its `plangate/approval`) are dropped. Without the
 * drop, the old commit gets an approval check nobody will look at, and the
 * project's next plan waits for it.
 */
jest.setTimeout(180_000);

let h: Harness;
let repo: GitRepo;
let prs: PullRequests;
const data = (value: string) => `resource "terraform_data" "r" {\n  input = "${value}"\n}\n`;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "2", PLANGATE_GITHUB_WRITE_INTERVAL: "1s" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  prs = new PullRequests(h, repo);
  repo.commit({ "app/main.tf": data("0"), "web/main.tf": data("0") });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/**
 * Once the new head is reported: both heads' plan checks passed (the old one
 * was written before the push and stays as it was), the old head's approval
 * check was dropped (the PR had moved on), and the PR's comment shows the new head.
 */
async function expectNewHeadOnly(old: Pr, next: Pr): Promise<void> {
  await waitFor("the new head's approval check", () => prs.check("plangate/approval", next.sha));
  await queueDrained(h.db);
  expect(prs.check("plangate/plan", next.sha)).toMatchObject({ status: "completed", conclusion: "success" });
  expect(prs.check("plangate/plan", old.sha)).toMatchObject({ status: "completed", conclusion: "success" });
  expect(prs.check("plangate/approval", old.sha)).toBeUndefined();
  const shown = prs.comments(next).filter((c) => c.includes("plangate plan for"));
  expect(shown.at(-1)).toContain(next.sha.slice(0, 7));
}

describe("superseded writes", () => {
  engineTest("a push while the old head's report writes: the new comment goes out, the old head's remaining writes are dropped", async () => {
    // GitHub is slow to answer the old head's label write: its report waits there, with its approval check still to come.
    const slow = h.fake.hold("PUT", /\/issues\/\d+\/labels$/);
    const old = await prs.openNoWait({ "app/main.tf": data("old") }, ["app/main.tf"]);
    await slow.reached;
    expect(prs.comments(old).some((c) => c.includes(`\`${old.sha.slice(0, 7)}\``))).toBe(true);

    const next = await prs.pushNoWait(old, { "app/main.tf": data("new") }, ["app/main.tf"]).catch((error: unknown) => {
      slow.release();
      throw error;
    });
    try {
      // The push is known (its plan group exists) while the old head's report still waits on GitHub.
      const groups = async () => (await h.db.pool.query("select 1 from run_groups where sha = $1", [next.sha])).rowCount;
      await waitFor("the new head's plan", async () => (await groups()) === 1);
    } finally {
      slow.release();
    }
    await expectNewHeadOnly(old, next);
  });

  engineTest("a push while the old head's report waits on GitHub: the project's next plan runs and its comment goes out", async () => {
    // Another project than the first test's (whose PR holds its lock). GitHub is slow to answer the old head's label
    // lookup (a read, after its comment and plan check): its report waits there.
    const slow = h.fake.hold("GET", /\/issues\/\d+\/labels$/);
    const old = await prs.openNoWait({ "web/main.tf": data("old") }, ["web/main.tf"]);
    await slow.reached;
    const shows = (sha: string) => prs.comments(old).some((c) => c.includes(`\`${sha.slice(0, 7)}\``));
    expect(shows(old.sha)).toBe(true);
    let next: typeof old;
    try {
      next = await prs.pushNoWait(old, { "web/main.tf": data("new") }, ["web/main.tf"]);
      // The report is a job of its own: the project's queue moved on when the old head's result was stored, so the
      // new head plans and its comment is posted while the old head's report still waits.
      await waitFor("the new head's comment while the old head's report waits", () => shows(next.sha));
    } finally {
      slow.release();
    }
    await expectNewHeadOnly(old, next);
  });
});
