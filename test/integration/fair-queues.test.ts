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
  for (let i = 0; i < 6; i++) files[`next${i}/main.tf`] = data("0");
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

describe("superseded writes", () => {
  engineTest("a push while the previous head plans: the old head's remaining projects are skipped, its check says superseded, the new head is planned in full", async () => {
    const files = (v: string) => Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`next${i}/main.tf`, data(v)]));
    const first = await prs.openNoWait(files("2"), Object.keys(files("2")));
    await waitFor("the first head's first plan", async () => Number((await h.db.pool.query("select count(*) from runs where sha = $1 and status <> 'queued'", [first.sha])).rows[0].count) > 0);
    const second = await prs.pushNoWait(first, files("3"), Object.keys(files("3")));
    await waitFor("the new head's plan", () => prs.check("plangate/plan", second.sha)?.status === "completed");
    expect(prs.check("plangate/plan", second.sha)?.conclusion).toBe("success");
    await waitFor("the old head's runs to end", async () => Number((await h.db.pool.query("select count(*) from runs where sha = $1 and status in ('queued', 'running')", [first.sha])).rows[0].count) === 0);
    const old = (await h.db.pool.query("select status, count(*)::int as n from runs where sha = $1 group by status order by status", [first.sha])).rows;
    expect(old.find((r) => r.status === "skipped")?.n).toBeGreaterThan(0);
    // The old head's check, if one was opened, ends neutral; no comment of the PR shows the old head.
    const oldCheck = prs.check("plangate/plan", first.sha);
    if (oldCheck) expect(oldCheck).toMatchObject({ status: "completed", conclusion: "neutral", output: { title: "Superseded by a later push" } });
    const comments = prs.comments(second).filter((c) => c.includes("plangate plan for"));
    expect(comments.at(-1)).toContain(second.sha.slice(0, 7));
    expect(comments.some((c) => c.includes(`plangate plan for \`${first.sha.slice(0, 7)}\``))).toBe(false);
  });
});
