// Fair queues and superseded writes (issue 25, items 4 and 5), side by side in one run:
// Each latency runs from the webhook's delivery (the bench's git commit and push, GitHub's
// side, run in this process before it and are not timed) to the comment showing the head:
// - a 1-project PR's comment latency on an idle app, and again while a BIG-project PR
//   (500 by default) plans in the same repository: target within 2x of idle;
// - a push's comment latency on a quiet app, and for pushes 2 s apart on one PR, each
//   push's own comment: target within 0.5 s of quiet.
// The app runs in the bench process (the test harness) with 2 job slots and the bubblewrap
// sandbox, against the test suite's fake GitHub and a real git repository.
// Run: DATABASE_URL=postgres://... npm run bench:fairness   (BENCH_BIG=500, BENCH_ROUNDS=3, BENCH_PUSHES=5)
import { startHarness, waitFor, type Harness } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { PullRequests, type Pr } from "../test/support/pull-requests.js";

const BIG = Number(process.env.BENCH_BIG ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PUSHES = Number(process.env.BENCH_PUSHES ?? 5);
const REPO = "Codertocat/Hello-World";
const data = (value: string) => `resource "terraform_data" "r" {\n  input = "${value}"\n}\n`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round2 = (x: number) => +x.toFixed(2);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
let givenUp = false; // set once the last rapid push is planned: a push never shown by then was superseded unseen

/** Seconds from `since` until a comment on the PR shows `sha` (polled every 10 ms: the bench's resolution). */
async function commentShowing(h: Harness, pr: Pr, sha: string, since: number): Promise<number> {
  const short = sha.slice(0, 7);
  const deadline = Date.now() + 1_800_000;
  for (;;) {
    if (h.fake.commentsOn(REPO, pr.number).some((c) => c.body.includes(`\`${short}\``))) return (Date.now() - since) / 1000;
    if (Date.now() > deadline || givenUp) throw new Error(`no comment for ${short} on #${pr.number}`);
    await pause(10);
  }
}

async function planned(h: Harness, prs: PullRequests, sha: string): Promise<void> {
  await waitFor(`plangate/plan on ${sha.slice(0, 7)}`, () => prs.check("plangate/plan", sha)?.status === "completed", 1_800_000);
}

/** One push (or open) of the small project, timed to its comment; waits for its check and GitHub's pacing to settle. */
async function smallRound(h: Harness, prs: PullRequests, pr: Pr | undefined, value: string): Promise<[Pr, number]> {
  const files = { "small/main.tf": data(value) };
  let started = 0;
  const delivering = () => (started = Date.now());
  const next = pr ? await prs.pushNoWait(pr, files, ["small/main.tf"], delivering) : await prs.openNoWait(files, ["small/main.tf"], delivering);
  const seconds = await commentShowing(h, next, next.sha, started);
  await planned(h, prs, next.sha);
  return [next, seconds];
}

async function main() {
  const h = await startHarness({ PLANGATE_WORKERS: "2" });
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  const prs = new PullRequests(h, repo);
  const base: Record<string, string> = { "small/main.tf": data("0"), "pushed/main.tf": data("0") };
  for (let i = 0; i < BIG; i++) base[`big/p${i}/main.tf`] = data("0");
  repo.commit(base);
  const result: Record<string, unknown> = { big_projects: BIG, rounds: ROUNDS, date: new Date().toISOString() };

  // Warm the mirror, then the idle figure: a 1-project PR on an otherwise idle app.
  let [small] = await smallRound(h, prs, undefined, "warm");
  await pause(1500);
  const idle: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [next, s] = await smallRound(h, prs, small, `idle-${i}`);
    small = next;
    idle.push(s);
    await pause(1500);
  }

  // The same while a BIG-project PR plans: its first plans have begun when the small PR is pushed.
  const bigFiles: Record<string, string> = {};
  for (let i = 0; i < BIG; i++) bigFiles[`big/p${i}/main.tf`] = data("1");
  const bigStarted = Date.now();
  const big = await prs.openNoWait(bigFiles, Object.keys(bigFiles));
  const started = async () => Number((await h.db.pool.query("select count(*) from runs where sha = $1 and status <> 'queued'", [big.sha])).rows[0].count);
  await waitFor("the big PR's first plans", async () => (await started()) >= 4, 600_000);
  const busy: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [next, s] = await smallRound(h, prs, small, `busy-${i}`);
    small = next;
    busy.push(s);
    await pause(1500); // as between idle rounds: each round starts with GitHub's write pace quiet, the big PR writing nothing yet
  }
  const bigDoneWhenSmallWas = await started();
  await planned(h, prs, big.sha);
  const bigSeconds = (Date.now() - bigStarted) / 1000;
  result.fairness = {
    small_pr_comment_idle_s: idle.map(round2),
    small_pr_comment_during_big_s: busy.map(round2),
    ratio_medians: round2(median(busy) / median(idle)),
    big_pr_projects_begun_when_last_small_was_planned: bigDoneWhenSmallWas,
    big_pr_all_plans_s: round2(bigSeconds),
  };
  await pause(2000);

  // Superseded writes: quiet pushes first, then PUSHES pushes 2 s apart, each timed to its own comment.
  let [pushed] = await (async () => {
    const files = { "pushed/main.tf": data("q") };
    const p = await prs.openNoWait(files, ["pushed/main.tf"]);
    await planned(h, prs, p.sha);
    return [p];
  })();
  await pause(1500);
  const quiet: number[] = [];
  const push = async (value: string): Promise<[Pr, Promise<number>]> => {
    let startedAt = 0;
    const next = await prs.pushNoWait(pushed, { "pushed/main.tf": data(value) }, ["pushed/main.tf"], () => (startedAt = Date.now()));
    pushed = next;
    return [next, commentShowing(h, next, next.sha, startedAt)];
  };
  for (let i = 0; i < ROUNDS; i++) {
    const [next, seconds] = await push(`quiet-${i}`);
    quiet.push(await seconds);
    await planned(h, prs, next.sha);
    await pause(2500);
  }
  const rapid: Promise<number>[] = [];
  let last: Pr = pushed;
  for (let i = 0; i < PUSHES; i++) {
    const [next, seconds] = await push(`rapid-${i}`);
    rapid.push(seconds.catch(() => Number.NaN));
    last = next;
    if (i < PUSHES - 1) await pause(2000);
  }
  await planned(h, prs, last.sha);
  await pause(1000);
  givenUp = true;
  const each = await Promise.all(rapid);
  result.superseded = {
    push_comment_quiet_s: quiet.map(round2),
    pushes_2s_apart_comment_s: each.map(round2), // null: that push's comment was never shown (superseded first)
    worst_above_quiet_median_s: round2(Math.max(...each.filter((s) => !Number.isNaN(s))) - median(quiet)),
  };
  await h.close();
  console.log(JSON.stringify(result, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
