import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";
import { slowProject } from "../support/terraform-plans.js";
import { batchSize } from "../../src/jobs/plan-jobs.js";

jest.setTimeout(300_000);

// Two sandbox lanes (and three plan slots): one can stand idle while the other plans a batch.
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const N = 48;
const dirs = Array.from({ length: N }, (_, i) => `many/p${String(i).padStart(2, "0")}`);
const project = (value: string) => `resource "terraform_data" "r" {\n  input = "${value}"\n}\n`;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "2" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "base", ...Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, project("0")])) });
  prs = new PullRequests(h, repo, "Codertocat", 910);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

interface RunRow {
  id: number;
  project: string;
  status: string;
  started_at: Date;
}

describe("a batch's last projects never wait for one lane while another idles", () => {
  engineTest("the PR's last batch, of slow projects, hands half of those not yet begun to the idle lane: every project planned and audited once", async () => {
    const size = batchSize(N);
    expect(size).toBe(3);
    // The last batch (the runs are queued in the projects' order, batches in turn) is three slow projects: when
    // the other lane has planned the rest, the batch is still on its first.
    const slow = new Set(dirs.slice(-size));
    const files = Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, slow.has(d) ? slowProject("1") : project("1")]));
    const pr = await prs.openNoWait(files, Object.keys(files));
    await waitFor("the PR's plan", () => prs.check("plangate/plan", pr.sha)?.status === "completed", 240_000);
    await queueDrained(h.db);
    const { rows } = await h.db.pool.query<RunRow>("select id, project, status, started_at from runs where kind = 'plan' and sha = $1 order by id", [pr.sha]);
    expect(rows.map((r) => `${r.project}:${r.status}`)).toEqual(dirs.map((d) => `${d}:succeeded`));
    // Begun in one entry, a batch's runs share its start: the slow batch's did not, its last project was planned beside
    // the first two, in the lane the others had left idle. Without the halving all three begin together.
    const slowRuns = rows.filter((r) => slow.has(r.project));
    const starts = new Set(slowRuns.map((r) => r.started_at.getTime()));
    expect(starts.size).toBeGreaterThan(1);
    const [entryStart] = [...starts].sort((a, b) => a - b);
    const inEntry = slowRuns.filter((r) => r.started_at.getTime() === entryStart).map((r) => r.project);
    expect(inEntry).toEqual(dirs.slice(-size, -size + inEntry.length)); // the first, and the first half of the rest

    // Still once each: one plan.started and one plan.succeeded a run, and every project in the PR's comment.
    const { rows: audited } = await h.db.pool.query<{ project: string; actions: string[] }>(
      "select r.project, array_agg(a.action order by a.id) as actions from audit_events a join runs r on r.id = a.run_id where a.run_id = any($1) and a.action like 'plan.%' group by r.project",
      [rows.map((r) => r.id)],
    );
    expect(audited).toHaveLength(N);
    for (const a of audited) expect(a.actions).toEqual(["plan.started", "plan.succeeded"]);
    const said = prs.comments(pr).join("\n");
    for (const d of dirs) expect(said).toContain(`| \`${d}\` | \`default\` | ✅ planned | 1 | 0 | 0 | 0 |`);
    expect(prs.check("plangate/plan", pr.sha)).toMatchObject({ conclusion: "success" });
  });
});
