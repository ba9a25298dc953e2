import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { terraformsRunning } from "../support/processes.js";
import { PullRequests } from "../support/pull-requests.js";

jest.setTimeout(240_000);

// One sandbox lane: what PLANGATE_WORKERS=1 promises an operator sizing a pod (one terraform at a time).
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const dirs = Array.from({ length: 10 }, (_, i) => `stacks/s${i}`);
const project = (value: string) => `resource "terraform_data" "r" {\n  count = 20\n  input = "${value}-\${count.index}"\n}\n`;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "1" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "base", ...Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, project("0")])) });
  prs = new PullRequests(h, repo, "Codertocat", 700);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

describe("sandbox lanes: PLANGATE_WORKERS programs at once, one job more", () => {
  engineTest("with PLANGATE_WORKERS=1 never two terraforms run at once, while a second job works beside the one planning; every project is planned once", async () => {
    let mostTerraforms = 0;
    let mostRunning = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        mostTerraforms = Math.max(mostTerraforms, terraformsRunning(process.pid));
        // Runs begun and not finished: a project's job begins its run before its program waits for the lane.
        const { rows } = await h.db.pool.query("select count(*)::int as n from runs where status = 'running'");
        mostRunning = Math.max(mostRunning, rows[0].n);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const files = Object.fromEntries(dirs.map((d) => [`${d}/main.tf`, project("1")]));
    const pr = await prs.openNoWait(files, Object.keys(files));
    await waitFor("the PR's plan", () => prs.check("plangate/plan", pr.sha)?.status === "completed", 180_000);
    await queueDrained(h.db);
    watching = false;
    await watch;

    // The lane: one program at a time. Two job slots: a second project's run began while the first planned.
    expect(mostTerraforms).toBe(1);
    expect(mostRunning).toBe(2);
    const comment = prs.comments(pr).join("\n");
    for (const d of dirs) expect(comment).toContain(`| \`${d}\` | \`default\` | ✅ planned | 20 | 0 | 0 | 0 |`);
    const { rows } = await h.db.pool.query("select project, count(*)::int as n from audit_events where action = 'plan.succeeded' and sha = $1 group by project order by project", [pr.sha]);
    expect(rows).toEqual(dirs.map((d) => ({ project: d, n: 1 })));
  });
});
