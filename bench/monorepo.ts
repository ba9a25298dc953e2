// Monorepo planning: a PR touching all 50 projects with 1 vs 2 concurrent jobs, and
// a PR touching 1 of 50 projects vs a 1-project repository. Run: npm run bench:monorepo
import { startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";

const PROJECTS = 50;
const project = (i: number, round: number) => `resource "terraform_data" "r" {\n  count = 20\n  input = "p${i}-r${round}-\${count.index}"\n}\n`;
let pr = 0;


async function timePlan(h: Harness, repo: GitRepo, files: Record<string, string>, phase?: (seconds: number) => void): Promise<number> {
  const number = ++pr;
  const sha = repo.commit(files, `bench-${number}`);
  h.fake.pullFiles.set("Codertocat/Hello-World#" + number, Object.keys(files));
  h.fake.pulls.set("Codertocat/Hello-World#" + number, { headSha: sha });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  const started = performance.now();
  await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
  await waitFor("plan", () => h.fake.checkRuns.some((c) => c.head_sha === sha && c.status === "completed"), 600_000);
  const seconds = (performance.now() - started) / 1000;
  const { rows } = await h.db.pool.query<{ span: string }>("select extract(epoch from (max(finished_at) - min(started_at))) as span from runs where sha = $1", [sha]);
  phase?.(Number(rows[0]!.span));
  await new Promise((r) => setTimeout(r, 2500)); // GitHub write pacing settles between PRs
  return seconds;
}

async function withRepo(workers: string, projects: number, fn: (h: Harness, repo: GitRepo) => Promise<void>) {
  const h = await startHarness({ PLANGATE_WORKERS: workers });
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit(Object.fromEntries(Array.from({ length: projects }, (_, i) => [`projects/p${i}/main.tf`, project(i, 0)])));
  await timePlan(h, repo, { "projects/p0/main.tf": project(0, 99) }); // warm the mirror
  await fn(h, repo);
  await h.close();
}

const all = (round: number) => Object.fromEntries(Array.from({ length: PROJECTS }, (_, i) => [`projects/p${i}/main.tf`, project(i, round)]));

async function main() {
  const result: Record<string, number> = {};
  // planning phase: first project job start to last project job end, without GitHub's write pacing
  await withRepo("1", PROJECTS, async (h, repo) => {
    result.all50_workers1 = await timePlan(h, repo, all(1), (s) => (result.all50_workers1_planning = s));
  });
  await withRepo("2", PROJECTS, async (h, repo) => {
    result.all50_workers2 = await timePlan(h, repo, all(2), (s) => (result.all50_workers2_planning = s));
    result.one_of_50 = await timePlan(h, repo, { "projects/p7/main.tf": project(7, 3) });
  });
  await withRepo("2", 1, async (h, repo) => {
    result.one_project_repo = await timePlan(h, repo, { "projects/p0/main.tf": project(0, 3) });
  });
  console.log(JSON.stringify({
    seconds: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, +v.toFixed(2)])),
    speedup_2_vs_1: +(result.all50_workers1! / result.all50_workers2!).toFixed(2),
    speedup_2_vs_1_planning_phase: +(result.all50_workers1_planning! / result.all50_workers2_planning!).toFixed(2),
    one_of_50_vs_one_project: +(result.one_of_50! / result.one_project_repo!).toFixed(2),
  }, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
