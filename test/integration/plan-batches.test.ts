import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";
import { batchSize } from "../../src/jobs/plan-jobs.js";

jest.setTimeout(300_000);

// One job slot: what a batch does with it is all there is to see.
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const BIG = 64;
const dirs = Array.from({ length: BIG }, (_, i) => `big/p${String(i).padStart(2, "0")}`);
const project = (value: string) => `resource "terraform_data" "r" {\n  input = "${value}"\n}\n`;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "1" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "base", "solo/main.tf": project("0"), ...Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, project("0")])) });
  prs = new PullRequests(h, repo, "Codertocat", 900);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

interface RunRow {
  id: number;
  project: string;
  status: string;
  started_at: Date | null;
}
const runsOf = async (sha: string) => (await h.db.pool.query<RunRow>("select id, project, status, started_at from runs where kind = 'plan' and sha = $1 order by id", [sha])).rows;
const plansSucceeded = async () => Number((await h.db.pool.query("select count(*) from audit_events where action = 'plan.succeeded'")).rows[0].count);
/** plan-project jobs this process finished, from its /metrics. */
async function planJobsDone(): Promise<number> {
  const series = 'plangate_job_duration_seconds_count{task="plan-project",outcome="ok"} ';
  const line = (await (await fetch(`${h.url}/metrics`)).text()).split("\n").find((l) => l.startsWith(series));
  return Number(line?.slice(series.length) ?? NaN);
}

describe("a large PR's projects planned in batches", () => {
  engineTest("64 projects go 4 to a job, each planned and audited once; a 1-project PR opened meanwhile starts after the run in progress, not after the batch", async () => {
    const size = batchSize(BIG);
    expect(size).toBe(4);
    const big = await prs.openNoWait(Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, project("1")])), dirs.map((d) => `${d}/main.tf`));
    // The second batch's first run (runs are batched in id order) is being planned: three more of its batch wait behind it.
    const second = await waitFor("the second batch under way", async () => {
      const runs = await runsOf(big.sha);
      return runs.length === BIG && runs[size]!.status === "running" ? runs[size] : undefined;
    }, 120_000);
    // The batch holds its runs, not the queue: the rest of its batch and the later batches are still queued.
    expect((await runsOf(big.sha)).slice(size + 1).every((r) => r.status === "queued")).toBe(true);

    const small = await prs.openNoWait({ "solo/main.tf": project("1") }, ["solo/main.tf"]);
    await waitFor("the 1-project PR's plan", () => prs.check("plangate/plan", small.sha)?.status === "completed", 120_000);
    const [solo] = await runsOf(small.sha);
    expect(solo).toMatchObject({ project: "solo", status: "succeeded" });
    // No run of the big PR began between the second batch's first and the small PR's run: the batch handed its rest back.
    const bigRuns = await runsOf(big.sha);
    const begunBefore = bigRuns.filter((r) => r.started_at && r.started_at < solo!.started_at!).map((r) => r.project);
    expect(begunBefore).toEqual(dirs.slice(0, size + 1));
    expect(prs.comments(small)[0]).toContain("| `solo` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");

    // The big PR still plans every project exactly once, in one comment, each audited once.
    await waitFor("the big PR's plan", () => prs.check("plangate/plan", big.sha)?.status === "completed", 240_000);
    await queueDrained(h.db);
    const done = await runsOf(big.sha);
    expect(done.map((r) => `${r.project}:${r.status}`)).toEqual(dirs.map((d) => `${d}:succeeded`));
    const { rows: audited } = await h.db.pool.query(
      "select run_id, array_agg(action order by id) as actions from audit_events where run_id = any($1) and action like 'plan.%' group by run_id",
      [done.map((r) => r.id)],
    );
    expect(audited).toHaveLength(BIG);
    for (const a of audited) expect(a.actions).toEqual(["plan.started", "plan.succeeded"]);
    const said = prs.comments(big).join("\n");
    for (const d of dirs) expect(said).toContain(`| \`${d}\` | \`default\` | ✅ planned | 1 | 0 | 0 | 0 |`);
    expect(prs.check("plangate/plan", big.sha)).toMatchObject({ conclusion: "success" });
    expect(await plansSucceeded()).toBe(BIG + 1);
    // 16 batches and the small PR's one job, and a job more for each batch that handed its rest back: far fewer than one per project.
    const jobs = await planJobsDone();
    expect(jobs).toBeGreaterThanOrEqual(BIG / size + 1);
    expect(jobs).toBeLessThan(BIG / 2);
  });
});
