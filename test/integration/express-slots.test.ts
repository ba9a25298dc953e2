import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";

/**
 * A report waits on GitHub (its writes go a paced second apart, and GitHub
 * may be slow to answer one): it waits in a job slot of its own kind, never
 * in one a plan needs. With PLANGATE_WORKERS=1 a process has two plan slots:
 * two reports waiting on slow GitHub writes used to fill both, and a
 * third PR was not even selected until GitHub answered.
 */
jest.setTimeout(180_000);

let h: Harness;
let repo: GitRepo;
let prs: PullRequests;
const data = (value: string) => `resource "terraform_data" "r" {\n  input = "${value}"\n}\n`;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "1" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  prs = new PullRequests(h, repo, "Codertocat", 800);
  repo.commit({ "a/main.tf": data("0"), "b/main.tf": data("0"), "c/main.tf": data("0") });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

const reportsRunning = async () => Number((await h.db.pool.query("select count(*) from graphile_worker.jobs where task_identifier = 'report-plan' and locked_at is not null")).rows[0].count);
const planned = async (pr: Pr) => (await h.db.pool.query("select 1 from audit_events where action = 'plan.succeeded' and sha = $1", [pr.sha])).rowCount === 1;

describe("job slots: reports apart from plans", () => {
  engineTest("while two PRs' reports wait on a slow GitHub write, a third PR is selected and planned; every comment goes out once GitHub answers", async () => {
    // GitHub is slow to answer the first two PRs' comments.
    const slow = [h.fake.hold("POST", /\/issues\/\d+\/comments$/), h.fake.hold("POST", /\/issues\/\d+\/comments$/)];
    let released = false;
    try {
      const a = await prs.openNoWait({ "a/main.tf": data("a") }, ["a/main.tf"]);
      const b = await prs.openNoWait({ "b/main.tf": data("b") }, ["b/main.tf"]);
      await Promise.all(slow.map((s) => s.reached));
      await waitFor("both reports waiting on GitHub", async () => (await reportsRunning()) === 2, 60_000);

      const c = await prs.openNoWait({ "c/main.tf": data("c") }, ["c/main.tf"]);
      await waitFor("the third PR's plan, with GitHub still not answering", () => planned(c), 60_000);
      expect([...prs.comments(a), ...prs.comments(b)]).toEqual([]);

      slow.forEach((s) => s.release());
      released = true;
      for (const pr of [a, b, c]) {
        await waitFor(`#${pr.number}'s plan check`, () => prs.check("plangate/plan", pr.sha)?.status === "completed", 60_000);
        expect(prs.check("plangate/plan", pr.sha)).toMatchObject({ conclusion: "success" });
        expect(prs.comments(pr).join("\n")).toContain(`\`${pr.sha.slice(0, 7)}\``);
      }
      await queueDrained(h.db);
    } finally {
      if (!released) slow.forEach((s) => s.release());
    }
  });
});
