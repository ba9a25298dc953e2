// End to end: seconds from a signed pull_request webhook to the plan comment on
// the (fake, HTTP-level) GitHub, side by side with bare `terraform init && plan
// && show -json` of the same directory, for a 1-resource and a 3,000-resource
// project. plangate runs as its own process (`plangate start`, as deployed), so
// the fake GitHub's work is not done on plangate's event loop; BENCH_APP=in-process
// runs it inside the bench instead (the test suite's harness).
// Run: DATABASE_URL=postgres://... npm run bench:e2e
import { queueDrained, startHarness, waitFor, WEBHOOK_SECRET } from "../test/support/app-harness.js";
import type { TestDatabase } from "../test/support/database.js";
import type { FakeGitHub } from "../test/support/fake-github.js";
import { GitRepo } from "../test/support/git-repo.js";
import { bareTerraform } from "./bare.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";
import { deployment, startProcess } from "./processes.js";

/** A running plangate, the fake GitHub it talks to and its database. */
interface Target {
  fake: FakeGitHub;
  db: TestDatabase;
  url: string;
  close(): Promise<void>;
}

async function target(): Promise<Target> {
  if (process.env.BENCH_APP === "in-process") return startHarness({ PLANGATE_WORKERS: "2" });
  const d = await deployment({ PLANGATE_WORKERS: "2" });
  const started = await startProcess(d, "start");
  return { fake: d.fake, db: d.db, url: started.url!, close: () => d.close() };
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const REPO = "Codertocat/Hello-World";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round3 = (x: number) => +x.toFixed(3);

const SIZES: Record<string, (i: number) => string> = {
  "1 resource": (i) => `resource "terraform_data" "a" {\n  input = "round-${i}"\n}\n`,
  "3,000 resources": (i) => `resource "terraform_data" "many" {\n  count = 3000\n  input = { round = ${i}, index = count.index, name = "item-\${count.index}" }\n}\n`,
};

interface Round { comment: number; allParts: number; writes: string[] }

/** One push to PR #number: webhook → first comment part naming the commit, and → every part. */
async function plangate(h: Target, repo: GitRepo, number: number, dir: string, config: string): Promise<Round> {
  const sha = repo.commit({ [`${dir}/main.tf`]: config }, `feature-${number}`);
  h.fake.pullFiles.set(`${REPO}#${number}`, [`${dir}/main.tf`]);
  h.fake.pulls.set(`${REPO}#${number}`, { headSha: sha });
  const payload = examplePayload("pull_request", "synchronize");
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  const from = h.fake.requests.length;
  const started = Date.now(); // the fake stamps each request it receives with Date.now()
  await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
  const short = sha.slice(0, 7);
  await waitFor("every part", () => {
    const parts = h.fake.commentsOn(REPO, number);
    return parts.length > 0 && parts.every((c) => c.body.includes(short));
  }, 300_000);
  await queueDrained(h.db);
  // When GitHub received the comment's writes (the first part is the comment a reviewer sees first), not when a poll noticed.
  const commentWrites = h.fake.requests.slice(from).filter((r) => /\/issues\/(\d+\/comments|comments\/\d+)$/.test(r.path) && r.method !== "GET");
  const comment = (commentWrites[0]!.at - started) / 1000;
  const allParts = (commentWrites.at(-1)!.at - started) / 1000;
  if (process.env.BENCH_TRACE) await trace(h, sha, from);
  const writes = h.fake.requests.slice(from).filter((r) => r.method !== "GET" && r.path.startsWith("/api/v3/repos/")).map((r) => `${r.method} ${r.path.replace(`/api/v3/repos/${REPO}`, "")}`);
  // GitHub's write pacing (one a second per installation) settles before the next push.
  await new Promise((r) => setTimeout(r, 1200));
  return { comment, allParts, writes };
}

/** Where one round's time went: the stored timestamps and the fake's request log, relative to the delivery. */
async function trace(h: Target, sha: string, from: number) {
  const { rows } = await h.db.pool.query(
    `select d.received_at, g.created_at as group_at, min(r.started_at) as started, max(r.finished_at) as finished, g.reported_at
       from run_groups g join runs r on r.group_id = g.id join webhook_deliveries d on d.id = g.trigger_id where g.sha = $1 group by 1, 2, 5`,
    [sha],
  );
  const r = rows[0];
  if (!r) return console.log(`trace ${sha.slice(0, 7)}: no plan group`);
  const at = (d: Date) => `+${d.getTime() - r.received_at.getTime()}ms`;
  console.log(`trace ${sha.slice(0, 7)}: group ${at(r.group_at)} runs started ${at(r.started)} finished ${at(r.finished)} reported ${at(r.reported_at)}`);
  for (const q of h.fake.requests.slice(from)) console.log(`  ${`+${q.at - r.received_at.getTime()}ms`} ${q.method} ${q.path.slice(0, 70)}`);
}

async function main() {
  const h = await target();
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "base" }); // the base branch, whose .plangate.yml (none) gives the rules
  const results: Record<string, unknown> = {};
  let number = 10;
  for (const [size, config] of Object.entries(SIZES).filter(([size]) => !process.env.BENCH_SIZE || size.startsWith(process.env.BENCH_SIZE))) {
    number++;
    const dir = `p${number}`;
    const cold = await plangate(h, repo, number, dir, config(0));
    const rounds: Round[] = [];
    const bares: number[] = [];
    // Side by side: each plangate round is followed by a bare terraform round of the same configuration.
    for (let i = 1; i <= ROUNDS; i++) {
      rounds.push(await plangate(h, repo, number, dir, config(i)));
      bares.push(bareTerraform(config(i), { show: true }));
    }
    const comment = median(rounds.map((r) => r.comment));
    const bareMedian = median(bares);
    results[size] = {
      plangateColdSeconds: round3(cold.comment),
      plangateCommentSecondsMedian: round3(comment),
      plangateAllPartsSecondsMedian: round3(median(rounds.map((r) => r.allParts))),
      bareInitPlanShowSecondsMedian: round3(bareMedian),
      aboveBareSeconds: round3(comment - bareMedian),
      ratio: +(comment / bareMedian).toFixed(2),
      commentSeconds: rounds.map((r) => round3(r.comment)),
      bareSeconds: bares.map(round3),
      writesPerPlan: rounds.map((r) => r.writes.length),
      writesOfLastRound: rounds.at(-1)!.writes,
    };
  }
  await h.close();
  console.log(JSON.stringify({ rounds: ROUNDS, app: process.env.BENCH_APP === "in-process" ? "in the bench process" : "its own process", date: new Date().toISOString(), results }, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
