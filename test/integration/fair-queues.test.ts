import { jest } from "@jest/globals";
import { engineTest, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

/**
 * One PR's many projects do not starve everyone else: with one job slot, a
 * 1-project PR opened while a 12-project PR plans gets its comment before the
 * big one finishes (each plan's n-th project job has priority n). Without the
 * priorities the small PR's jobs wait behind all twelve.
 */
jest.setTimeout(300_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
const BIG = 12;
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;
const data = (value: string) => `resource "terraform_data" "r" {\n  input = "${value}"\n}\n`;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "1" });
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo);
  const files: Record<string, string> = { "small/main.tf": data("0") };
  for (let i = 0; i < BIG; i++) files[`big${i}/main.tf`] = data("0");
  repo.commit(files);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

const finishedOf = async (sha: string) => Number((await h.db.pool.query("select count(*) from runs where sha = $1 and status in ('succeeded', 'failed')", [sha])).rows[0].count);

describe("fair turns", () => {
  engineTest("a 1-project PR opened while a 12-project PR plans is planned before the big one finishes", async () => {
    const bigFiles: Record<string, string> = {};
    for (let i = 0; i < BIG; i++) bigFiles[`big${i}/main.tf`] = data("1");
    const big = await prs.openNoWait(bigFiles, Object.keys(bigFiles));
    // The big PR's project jobs are queued and the first has begun.
    await waitFor("the big PR's first plan", async () => Number((await h.db.pool.query("select count(*) from runs where sha = $1 and status <> 'queued'", [big.sha])).rows[0].count) > 0);
    const small = await prs.openNoWait({ "small/main.tf": data("1") }, ["small/main.tf"]);
    await waitFor("the small PR's plan", () => prs.check("plangate/plan", small.sha)?.status === "completed");
    expect(prs.check("plangate/plan", small.sha)?.conclusion).toBe("success");
    const bigDone = await finishedOf(big.sha);
    expect(bigDone).toBeLessThan(BIG / 2);
    expect(prs.check("plangate/plan", big.sha)?.status).not.toBe("completed");
    await waitFor("the big PR's plan", () => prs.check("plangate/plan", big.sha)?.status === "completed");
    expect(await finishedOf(big.sha)).toBe(BIG);
  });
});
