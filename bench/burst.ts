// A burst: 10,000 signed deliveries over 200 pull requests, sent concurrently to
// the real app (a server process and two worker processes on one database,
// bubblewrap sandbox, real terraform) against the HTTP-level fake GitHub and
// real git repositories. Each PR has 6 real heads (opened + 5 pushes) whose
// pull_request events arrive in shuffled order, plus events plangate records and
// ignores (labels, assignments, ordinary comments); 5 % of the requests are
// redeliveries (same X-GitHub-Delivery). GitHub already knows every PR's newest
// head (GET /pulls/:n answers it) while the deliveries are still arriving.
// Checks at the end (exit 1 on a violation): every accepted delivery recorded,
// no PR with two plans of one head or two plan comments, every PR's comment
// names its newest head, graphile_worker.jobs empty. Bounded: it gives up
// after BENCH_DRAIN_TIMEOUT seconds (default 900).
// Run: DATABASE_URL=postgres://root@127.0.0.1:5432/test npm run bench:burst
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { markerLine, PLAN_MARKER } from "../src/github/markers.js";
import { WEBHOOK_SECRET } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { examplePayload, signBody } from "../test/support/webhooks.js";
import { deployment, mb, memoryOf, sleep, startProcess } from "./processes.js";

const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 10_000);
const PULLS = Number(process.env.BENCH_PULLS ?? 200);
const REPOS = Number(process.env.BENCH_REPOS ?? 50); // one installation each: GitHub's write pacing is per installation
const HEADS = 6;
const DUPLICATE_SHARE = 0.05;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
const WORKER_SLOTS = process.env.BENCH_WORKER_SLOTS ?? "6";
const DRAIN_TIMEOUT_S = Number(process.env.BENCH_DRAIN_TIMEOUT ?? 900);
const WORKERS_AFTER = process.env.BENCH_WORKERS_AFTER === "1";
const OWNER = "burst-org";

/** A seeded PRNG (mulberry32), so a run can be replayed with BENCH_SEED. */
const seed = Number(process.env.BENCH_SEED ?? Math.floor(Math.random() * 2 ** 31));
let state = seed;
const random = () => {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const shuffle = <T>(xs: T[]) => {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
};

interface Pull {
  number: number;
  repo: string;
  installation: number;
  heads: string[];
}

interface Delivery {
  id: string;
  event: string;
  body: string;
  pull: number;
  /** Which head a pull_request.opened/synchronize carries. */
  head?: number;
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", args, { cwd, encoding: "utf8", env: { ...process.env, GIT_AUTHOR_NAME: "b", GIT_AUTHOR_EMAIL: "b@example.com", GIT_COMMITTER_NAME: "b", GIT_COMMITTER_EMAIL: "b@example.com", GIT_CONFIG_NOSYSTEM: "1" } }).trim();

/** REPOS real repositories; PULLS branches spread over them, each with HEADS real commits of a tiny project of its own. */
function makeRepositories(gitRoot: string): Pull[] {
  const pulls: Pull[] = [];
  for (let r = 0; r < REPOS; r++) {
    const repo = new GitRepo(gitRoot, OWNER, `repo-${r}`);
    repo.commit({ "README.md": `repo ${r}` });
    for (let number = r + 1; number <= PULLS; number += REPOS) {
      git(repo.work, "checkout", "--quiet", "-B", `pr-${number}`, "main");
      const heads: string[] = [];
      for (let k = 0; k < HEADS; k++) {
        mkdirSync(path.join(repo.work, `pr-${number}`), { recursive: true });
        writeFileSync(path.join(repo.work, `pr-${number}`, "main.tf"), `resource "terraform_data" "r" {\n  input = "pr-${number}-head-${k}"\n}\n`);
        git(repo.work, "add", "-A");
        git(repo.work, "commit", "--quiet", "-m", `head ${k}`);
        heads.push(git(repo.work, "rev-parse", "HEAD"));
      }
      pulls.push({ number, repo: `${OWNER}/repo-${r}`, installation: 5000 + r, heads });
    }
    git(repo.work, "push", "--quiet", "origin", "--all");
  }
  return pulls.sort((a, b) => a.number - b.number);
}

function withRepository(payload: Record<string, any>, pull: Pull) {
  const [owner, name] = pull.repo.split("/") as [string, string];
  payload.repository = { ...payload.repository, name, full_name: pull.repo, owner: { ...payload.repository.owner, login: owner } };
  payload.installation = { id: pull.installation, node_id: "x" };
  return payload;
}

function pullRequestEvent(pull: Pull, action: string, sha?: string) {
  const payload = withRepository(examplePayload("pull_request", action), pull);
  const repoObject = { ...payload.pull_request.base.repo, full_name: pull.repo };
  payload.pull_request = {
    ...payload.pull_request,
    number: pull.number,
    draft: false,
    state: "open",
    head: { ...payload.pull_request.head, ref: `pr-${pull.number}`, sha: sha ?? pull.heads.at(-1), repo: repoObject },
    base: { ...payload.pull_request.base, ref: "main", repo: repoObject },
  };
  payload.number = pull.number;
  return payload;
}

function chatter(pull: Pull, i: number): [string, Record<string, any>] {
  const kinds = ["labeled", "unlabeled", "assigned", "unassigned", "review_requested", "comment"] as const;
  const kind = kinds[i % kinds.length]!;
  if (kind !== "comment") return ["pull_request", pullRequestEvent(pull, kind)];
  const payload = withRepository(examplePayload("issue_comment", "created"), pull);
  payload.issue = { ...payload.issue, number: pull.number, pull_request: { url: "x" } };
  payload.comment = { ...payload.comment, id: 10_000_000 + pull.number * 100 + i, body: `Looks good (${i})`, user: { ...payload.comment.user, login: "alice", type: "User" } };
  payload.sender = { ...payload.sender, login: "alice", type: "User" };
  return ["issue_comment", payload];
}

/** The deliveries: per PR its HEADS pull_request events (opened + synchronize, shuffled) and chatter; then redeliveries. */
function makeDeliveries(pulls: Pull[]): Delivery[] {
  const unique = Math.round(DELIVERIES * (1 - DUPLICATE_SHARE));
  const perPull = Math.floor(unique / pulls.length);
  const out: Delivery[] = [];
  for (const [index, pull] of pulls.entries()) {
    const count = perPull + (index < unique - perPull * pulls.length ? 1 : 0);
    pull.heads.forEach((sha, k) => out.push({ id: randomUUID(), event: "pull_request", body: JSON.stringify(pullRequestEvent(pull, k === 0 ? "opened" : "synchronize", sha)), pull: pull.number, head: k }));
    for (let i = 0; i < count - HEADS; i++) {
      const [event, payload] = chatter(pull, i);
      out.push({ id: randomUUID(), event, body: JSON.stringify(payload), pull: pull.number });
    }
  }
  // Every PR's events are shuffled into the burst; the first PR's pushes arrive exactly in reverse (newest head first).
  const sent = shuffle(out.slice());
  const first = pulls[0]!.number;
  const slots = sent.flatMap((x, i) => (x.pull === first && x.head !== undefined ? [i] : []));
  const reversed = slots.map((i) => sent[i]!).sort((a, b) => b.head! - a.head!);
  slots.forEach((slot, k) => (sent[slot] = reversed[k]!));
  for (let i = 0; sent.length < DELIVERIES; i++) {
    const original = sent[Math.floor(random() * Math.min(sent.length, unique))]!;
    const at = sent.indexOf(original) + 1 + Math.floor(random() * (sent.length - sent.indexOf(original)));
    sent.splice(at, 0, { ...original });
  }
  return sent;
}

async function main() {
  if (!process.env.DATABASE_URL) throw new Error("set DATABASE_URL to a PostgreSQL the bench may create databases in");
  const d = await deployment({ LOG_LEVEL: "error" });
  let violations: string[] = [];
  try {
    const t0 = performance.now();
    const pulls = makeRepositories(d.fake.gitRoot);
    for (const p of pulls) {
      d.fake.pulls.set(`${p.repo}#${p.number}`, { headSha: p.heads.at(-1)!, author: "Codertocat" });
      d.fake.pullFiles.set(`${p.repo}#${p.number}`, [`pr-${p.number}/main.tf`]);
    }
    const deliveries = makeDeliveries(pulls);
    console.error(`${pulls.length} PRs in ${REPOS} repositories (${pulls.length * HEADS} commits) and ${deliveries.length} deliveries made in ${((performance.now() - t0) / 1000).toFixed(1)} s; seed ${seed}`);

    const server = await startProcess(d, "start", { PLANGATE_WORKERS: "0" });
    const startWorkers = async () => [await startProcess(d, "worker", { PLANGATE_WORKERS: WORKER_SLOTS }), await startProcess(d, "worker", { PLANGATE_WORKERS: WORKER_SLOTS })];
    // BENCH_WORKERS_AFTER=1: the workers start once every delivery is in (the server's ingest alone, then a cold drain).
    let workers = WORKERS_AFTER ? [] : await startWorkers();
    await sleep(3000);

    const latencies: number[] = [];
    const failed: string[] = [];
    const accepted = new Set<string>();
    let next = 0;
    const sendStart = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < deliveries.length) {
        const delivery = deliveries[next++]!;
        const started = performance.now();
        const res = await fetch(`${server.url}/api/github/webhooks`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-github-event": delivery.event, "x-github-delivery": delivery.id, "x-hub-signature-256": signBody(WEBHOOK_SECRET, delivery.body) },
          body: delivery.body,
        });
        await res.text();
        latencies.push(performance.now() - started);
        if (res.status === 200) accepted.add(delivery.id);
        else failed.push(`${delivery.id} answered ${res.status}`);
      }
    }));
    const sendSeconds = (performance.now() - sendStart) / 1000;
    console.error(`sent ${deliveries.length} in ${sendSeconds.toFixed(1)} s; draining…`);

    const jobsLeft = async () => (await d.db.pool.query<{ n: number }>("select count(*)::int as n from graphile_worker.jobs")).rows[0]!.n;
    if (WORKERS_AFTER) workers = await startWorkers();
    const drainStart = performance.now();
    let left = await jobsLeft();
    let peakWorkerMB = 0;
    while (left > 0 && performance.now() - drainStart < DRAIN_TIMEOUT_S * 1000) {
      await sleep(500);
      left = await jobsLeft();
      for (const w of workers) peakWorkerMB = Math.max(peakWorkerMB, memoryOf(w.pid).hwmMB);
      if (workers.some((w) => w.child.exitCode !== null)) throw new Error("a worker process exited");
    }
    const drainSeconds = (performance.now() - drainStart) / 1000;
    await sleep(2000); // a last GitHub write after the last job's end is not possible, but let the fake settle

    // What a user sees, and what plangate recorded.
    violations = [...failed.slice(0, 5)];
    if (left > 0) violations.push(`graphile_worker.jobs still holds ${left} jobs after ${DRAIN_TIMEOUT_S} s`);
    const recorded = new Set((await d.db.pool.query<{ id: string }>("select id from webhook_deliveries")).rows.map((r) => r.id));
    const lost = [...accepted].filter((id) => !recorded.has(id));
    if (lost.length) violations.push(`${lost.length} accepted deliveries not recorded (e.g. ${lost[0]})`);
    const duplicatePlans = (await d.db.pool.query(
      `select repo, pull_number, sha, count(*)::int as n from run_groups where kind = 'plan' group by 1, 2, 3 having count(*) > 1`,
    )).rows;
    if (duplicatePlans.length) violations.push(`${duplicatePlans.length} heads planned more than once, e.g. ${JSON.stringify(duplicatePlans[0])}`);
    const doubleAudit = (await d.db.pool.query(
      `select run_id, action, count(*)::int as n from audit_events where action in ('plan.started', 'plan.succeeded') group by 1, 2 having count(*) > 1`,
    )).rows;
    if (doubleAudit.length) violations.push(`${doubleAudit.length} runs audited twice, e.g. ${JSON.stringify(doubleAudit[0])}`);
    let stale = 0;
    let missing = 0;
    let doubled = 0;
    for (const p of pulls) {
      const planComments = d.fake.commentsOn(p.repo, p.number).filter((c) => c.body.includes(markerLine(PLAN_MARKER)));
      if (planComments.length === 0) missing++;
      else if (planComments.length > 1) doubled++;
      else if (!planComments[0]!.body.includes(`plangate plan for \`${p.heads.at(-1)!.slice(0, 7)}\``)) {
        stale++;
        if (stale <= 3) {
          const shown = p.heads.findIndex((h) => planComments[0]!.body.includes(h.slice(0, 7)));
          violations.push(`#${p.number} (${p.repo}): the plan comment shows head ${shown} (${p.heads[shown]?.slice(0, 7)}), not the newest (head ${HEADS - 1}, ${p.heads.at(-1)!.slice(0, 7)})`);
        }
      }
    }
    if (missing) violations.push(`${missing} PRs have no plan comment`);
    if (doubled) violations.push(`${doubled} PRs have more than one plan comment`);
    if (stale) violations.push(`${stale} PRs' plan comments do not show their newest head`);
    if (d.fake.unexpected.length) violations.push(`${d.fake.unexpected.length} unexpected GitHub requests, e.g. ${d.fake.unexpected[0]}`);
    const newestChecks = pulls.filter((p) => d.fake.checkRuns.some((c) => c.name === "plangate/plan" && c.head_sha === p.heads.at(-1) && c.status === "completed" && c.conclusion === "success")).length;
    if (newestChecks !== pulls.length) violations.push(`${pulls.length - newestChecks} PRs without a successful plangate/plan on their newest head`);

    const groups = (await d.db.pool.query("select count(*)::int as n, count(distinct (repo, pull_number))::int as prs from run_groups where kind = 'plan'")).rows[0];
    const runs = (await d.db.pool.query("select status, count(*)::int as n from runs where kind = 'plan' group by 1 order by 1")).rows;
    const timing = (await d.db.pool.query(
      `select percentile_cont(0.5) within group (order by extract(epoch from r.finished_at - r.started_at)) as run_p50,
              max(extract(epoch from r.finished_at - r.started_at)) as run_max,
              percentile_cont(0.5) within group (order by extract(epoch from g.reported_at - g.created_at)) as group_to_report_p50,
              extract(epoch from max(g.reported_at) - min(g.created_at)) as first_group_to_last_report
         from runs r join run_groups g on g.id = r.group_id where g.kind = 'plan'`,
    )).rows[0];
    const planEvents = (await d.db.pool.query("select count(*)::int as n from webhook_deliveries where outcome = 'enqueued:plan'")).rows[0].n;
    const sorted = [...latencies].sort((a, b) => a - b);
    const pct = (q: number) => +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
    const stuckChecks = d.fake.checkRuns.filter((c) => c.name === "plangate/plan" && c.status !== "completed").length;
    console.log(JSON.stringify({
      seed,
      setup: { pulls: PULLS, repositories: REPOS, installations: REPOS, headsPerPull: HEADS, workers: `2 processes × ${WORKER_SLOTS} slots${WORKERS_AFTER ? ", started after the last delivery" : ""}`, concurrency: CONCURRENCY },
      deliveries: { sent: deliveries.length, unique: new Set(deliveries.map((x) => x.id)).size, accepted: accepted.size, recorded: recorded.size, non200: failed.length },
      ingest: { seconds: +sendSeconds.toFixed(1), deliveriesPerSecond: Math.round(deliveries.length / sendSeconds), latencyMs: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) } },
      drain: { secondsAfterLastDelivery: +drainSeconds.toFixed(1), totalSecondsFromFirstDelivery: +(sendSeconds + drainSeconds).toFixed(1), jobsLeft: left },
      plans: {
        planEvents, groups: groups.n, notPlannedOlderHeads: planEvents - groups.n, pullsPlanned: groups.prs, runs: Object.fromEntries(runs.map((r) => [r.status, r.n])),
        seconds: Object.fromEntries(Object.entries(timing).map(([k, v]) => [k, +Number(v).toFixed(2)])),
      },
      github: { requests: d.fake.requests.length, comments: d.fake.comments.length, checkRuns: d.fake.checkRuns.length, planChecksNotCompleted: stuckChecks },
      memory: { serverPeakMB: mb(memoryOf(server.pid).hwmMB), workerPeakMB: mb(peakWorkerMB) },
      violations,
    }, null, 2));
  } finally {
    await d.close();
  }
  return violations.length ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
