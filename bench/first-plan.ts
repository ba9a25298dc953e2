// The first plan of a repository: a FRESH plangate (fresh database, fresh data dir, cold git mirror,
// no sandbox entered yet) plans the first PR of a one-project repository (one terraform_data). Seconds
// from the signed pull_request webhook to the plan comment on the (fake, HTTP-level) GitHub, side by
// side with bare `terraform init && terraform plan` of the same directory, measured in the same run.
// BENCH_TRACE=1 prints where each round's time went (stored timestamps and the fake's request log).
// Run: DATABASE_URL=postgres://... npm run bench:first-plan
import os from "node:os";
import { queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { bareTerraform } from "./bare.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REPO = "Codertocat/Hello-World";
const NUMBER = 1;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round3 = (x: number) => +x.toFixed(3);
const config = (i: number) => `resource "terraform_data" "a" {\n  input = "round-${i}"\n}\n`;

/** A fresh app, a fresh repository with one project, its first PR: webhook → the plan comment's first write. */
async function firstPlan(round: number): Promise<{ comment: number; writes: number }> {
  const h = await startHarness();
  try {
    const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
    repo.commit({ "README.md": "base" });
    const sha = repo.commit({ "app/main.tf": config(round) }, "feature");
    h.fake.pullFiles.set(`${REPO}#${NUMBER}`, ["app/main.tf"]);
    h.fake.pulls.set(`${REPO}#${NUMBER}`, { headSha: sha });
    const payload = examplePayload("pull_request", "opened");
    Object.assign(payload.pull_request, { number: NUMBER, draft: false });
    payload.pull_request.head.sha = sha;
    const started = Date.now(); // the fake stamps each request it receives with Date.now()
    await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
    await waitFor("the plan comment", () => h.fake.commentsOn(REPO, NUMBER).some((c) => c.body.includes(sha.slice(0, 7))), 120_000);
    await queueDrained(h.db);
    const commentWrite = h.fake.requests.find((r) => /\/issues\/(\d+\/comments|comments\/\d+)$/.test(r.path) && r.method !== "GET")!;
    if (process.env.BENCH_TRACE) await trace(h, sha, started);
    const writes = h.fake.requests.filter((r) => r.method !== "GET" && r.path.startsWith("/api/v3/repos/")).length;
    return { comment: (commentWrite.at - started) / 1000, writes };
  } finally {
    await h.close();
  }
}

/** Where one round's time went, relative to the webhook's delivery. */
async function trace(h: Harness, sha: string, started: number) {
  const { rows } = await h.db.pool.query(
    `select d.received_at, g.created_at as group_at, min(r.started_at) as started, max(r.finished_at) as finished, g.reported_at
       from run_groups g join runs r on r.group_id = g.id join webhook_deliveries d on d.id = g.trigger_id where g.sha = $1 group by 1, 2, 5`,
    [sha],
  );
  const r = rows[0];
  const at = (d: Date | number) => `+${(typeof d === "number" ? d : d.getTime()) - started}ms`;
  if (r) console.log(`trace: received ${at(r.received_at)} group ${at(r.group_at)} runs started ${at(r.started)} finished ${at(r.finished)} reported ${at(r.reported_at)}`);
  for (const q of h.fake.requests) if (q.at >= started) console.log(`  ${at(q.at)} ${q.method} ${q.path.slice(0, 80)}`);
}

async function main() {
  const comments: number[] = [];
  const bares: number[] = [];
  const baresNoShow: number[] = [];
  const writes: number[] = [];
  // Side by side: each fresh-app round is followed by bare terraform rounds of the same configuration,
  // with and without show -json.
  for (let i = 1; i <= ROUNDS; i++) {
    const r = await firstPlan(i);
    comments.push(r.comment);
    writes.push(r.writes);
    bares.push(bareTerraform(config(i), { show: true }));
    baresNoShow.push(bareTerraform(config(i), { show: false }));
  }
  const comment = median(comments);
  const bareMedian = median(bares);
  const bareNoShowMedian = median(baresNoShow);
  console.log(JSON.stringify({
    rounds: ROUNDS,
    date: new Date().toISOString(),
    firstCommentSecondsMedian: round3(comment),
    bareInitPlanShowSecondsMedian: round3(bareMedian),
    aboveBareSeconds: round3(comment - bareMedian),
    bareInitPlanSecondsMedian: round3(bareNoShowMedian),
    aboveBareWithoutShowSeconds: round3(comment - bareNoShowMedian),
    commentSeconds: comments.map(round3),
    bareSeconds: bares.map(round3),
    bareWithoutShowSeconds: baresNoShow.map(round3),
    loadAverage: os.loadavg().map((x) => +x.toFixed(2)),
    writesPerPlan: writes,
  }, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
