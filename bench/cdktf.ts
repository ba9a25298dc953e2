// cdktf: a PR's plan when the program's dependencies must be installed (first run)
// vs when they come from the cache (same lockfile). Run: npm run bench:cdktf
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";

const fixtureDir = "test/fixtures/cdktf-app";
const files = (touch: number) =>
  Object.fromEntries(readdirSync(fixtureDir).map((f) => [`app/${f}`, readFileSync(path.join(fixtureDir, f), "utf8") + (f === "main.js" ? `\n// ${touch}\n` : "")]));

async function timePlan(h: Harness, repo: GitRepo, number: number): Promise<number> {
  const sha = repo.commit(files(number), `cdk-${number}`);
  h.fake.pullFiles.set(`Codertocat/Hello-World#${number}`, ["app/main.js"]);
  h.fake.pulls.set(`Codertocat/Hello-World#${number}`, { headSha: sha });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  const started = performance.now();
  await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
  await waitFor("plan", () => h.fake.checkRuns.some((c) => c.head_sha === sha && c.status === "completed"), 300_000);
  const seconds = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 2500));
  return seconds;
}

async function main() {
  const h = await startHarness();
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "x" });
  const first = await timePlan(h, repo, 1);
  const cached = [await timePlan(h, repo, 2), await timePlan(h, repo, 3), await timePlan(h, repo, 4)].sort()[1]!;
  const { rows } = await h.db.pool.query("select started_at, finished_at, output from runs where project = 'app' order by id");
  const synth = rows.map((r) => ((r.finished_at - r.started_at) / 1000).toFixed(2));
  await h.close();
  console.log(JSON.stringify({ secondsToPlanComment: { firstRun: +first.toFixed(2), cachedMedian: +cached.toFixed(2) }, installPlusSynthSecondsPerRun: synth }, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
