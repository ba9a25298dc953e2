import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { terraformPid } from "../support/processes.js";
import { PullRequests } from "../support/pull-requests.js";
import { slowProject } from "../support/terraform-plans.js";
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
/** A series of this process's /metrics. */
async function metric(series: string): Promise<number> {
  const line = (await (await fetch(`${h.url}/metrics`)).text()).split("\n").find((l) => l.startsWith(`${series} `));
  return Number(line?.slice(series.length + 1) ?? NaN);
}
/** plan-project jobs this process finished. */
const planJobsDone = () => metric('plangate_job_duration_seconds_count{task="plan-project",outcome="ok"}');
/** Plans this process made in a sandbox entry shared with others of their batch. */
const plansTogether = () => metric("plangate_plans_together_total");

describe("a large PR's projects planned in batches, together in one sandbox entry", () => {
  engineTest("64 projects go 4 to a job and 4 to a sandbox entry, each planned and audited once; a broken one is planned alone and fails as any run; a 1-project PR opened meanwhile waits for one project of the entry in progress, not for its batch", async () => {
    const size = batchSize(BIG);
    expect(size).toBe(4);
    const together = await plansTogether();
    const broken = dirs[5]!;
    // The second batch's last two projects take a while to plan (a second or more each, however loaded the machine):
    // the small PR's job has time to arrive before the last begins.
    const slow = new Set(dirs.slice(2 * size - 2, 2 * size));
    const files = Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, d === broken ? 'resource "terraform_data" "r" {\n  input = var.missing\n}\n' : slow.has(d) ? slowProject("1") : project("1")]));
    const big = await prs.openNoWait(files, Object.keys(files));
    // The second batch's entry is under way (terraform runs one of its first three projects, in a nested sandbox:
    // visible from here; the third is a slow one, which a busy machine's polling cannot miss). Its runs stay queued
    // until their plans are stored.
    const second = dirs.slice(size, 2 * size);
    const underWay = (d: string) => ["init", "plan"].some((verb) => terraformPid(d, verb, process.pid) !== undefined);
    await waitFor("the second batch's entry under way", () => second.slice(0, 3).some(underWay), 120_000);
    const small = await prs.openNoWait({ "solo/main.tf": project("1") }, ["solo/main.tf"]);
    await waitFor("the 1-project PR's plan", () => prs.check("plangate/plan", small.sha)?.status === "completed", 120_000);
    const [solo] = await runsOf(small.sha);
    expect(solo).toMatchObject({ project: "solo", status: "succeeded" });
    // The entry stopped before its next project once the small PR's job waited: the rest of its batch went back to
    // the queue and began after the small PR's run. Without the stop they would all have begun before it.
    const bigRuns = await runsOf(big.sha);
    const after = bigRuns.filter((r) => second.includes(r.project) && (!r.started_at || r.started_at > solo!.started_at!));
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(bigRuns.filter((r) => r.started_at && r.started_at < solo!.started_at!).length).toBeLessThan(2 * size);
    expect(prs.comments(small)[0]).toContain("| `solo` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");

    // The big PR still plans every project exactly once, in one comment, each audited once.
    await waitFor("the big PR's plan", () => prs.check("plangate/plan", big.sha)?.status === "completed", 240_000);
    await queueDrained(h.db);
    const done = await runsOf(big.sha);
    expect(done.map((r) => `${r.project}:${r.status}`)).toEqual(dirs.map((d) => `${d}:${d === broken ? "failed" : "succeeded"}`));
    const { rows: audited } = await h.db.pool.query(
      "select r.project, array_agg(a.action order by a.id) as actions from audit_events a join runs r on r.id = a.run_id where a.run_id = any($1) and a.action like 'plan.%' group by r.project",
      [done.map((r) => r.id)],
    );
    expect(audited).toHaveLength(BIG);
    for (const a of audited) expect(a.actions).toEqual(["plan.started", a.project === broken ? "plan.failed" : "plan.succeeded"]);
    const said = prs.comments(big).join("\n");
    for (const d of dirs.filter((d) => d !== broken)) expect(said).toContain(`| \`${d}\` | \`default\` | ✅ planned | 1 | 0 | 0 | 0 |`);
    // Planned alone after the batch, its failure reads as any run's: the stage, and terraform's own words.
    expect(said).toMatch(new RegExp(`\\| \`${broken}\` \\| \`default\` \\| ❌ [^|]*\\|`));
    const { rows: [failed] } = await h.db.pool.query("select error, output from runs where sha = $1 and project = $2", [big.sha, broken]);
    expect(failed.error).toMatchObject({ stage: "plan", message: "terraform plan failed" });
    expect(failed.output).toContain("Reference to undeclared input variable");
    expect(prs.check("plangate/plan", big.sha)).toMatchObject({ conclusion: "failure" });
    expect(await plansSucceeded()).toBe(BIG);
    // Every project but the broken one was planned in a shared entry, but for a handed-back rest of one run (planned alone).
    const shared = (await plansTogether()) - together;
    expect(shared).toBeGreaterThanOrEqual(BIG - 1 - (size - 1));
    expect(shared).toBeLessThanOrEqual(BIG - 1);
    // 16 batches, the small PR's one job and the stopped batch's rest handed back: far fewer than one per project.
    const jobs = await planJobsDone();
    expect(jobs).toBeGreaterThanOrEqual(BIG / size + 2);
    expect(jobs).toBeLessThan(BIG / 2);
  });
});
