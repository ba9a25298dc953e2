import { readFileSync } from "node:fs";
import { jest } from "@jest/globals";
import { orderStacks, type SynthesizedStack } from "../../src/engines/cdktf-manifest.js";
import { withDependencies } from "../../src/engines/cdktf.js";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { ManualClock } from "../support/manual-clock.js";
import { leftAfterKill, processesNamed } from "../support/processes.js";
import { underAttack } from "../support/attack-meter.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

/**
 * The hostile PR author writes a cdktf program of many stacks: each stack's
 * plan fits in PLANGATE_JOB_TIMEOUT, all of them together do not. The
 * timeout bounds the whole job, so the worker slot and the project's lock
 * come free at it; a 60,000-stack dependency chain is ordered without
 * overflowing the call stack.
 */
jest.setTimeout(600_000);

const TIMEOUT_S = 20;
const STACKS = 300;
/** Time moves only when the test says: the timeout strikes when the test has seen what it waits for, however fast the machine. */
const clock = new ManualClock();
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_JOB_TIMEOUT: `${TIMEOUT_S}s` }, { clock });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  prs = new PullRequests(h, repo);
  repo.commit({ "README.md": "root" });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/**
 * A program of `count` stacks of one terraform_data each (cdktf-chain's dependencies) whose synth first
 * keeps busy for `busyMs` (Infinity: until it is killed).
 */
function manyStacks(count: number, busyMs = 0): Record<string, string> {
  const fixture = (f: string) => readFileSync(`test/fixtures/cdktf-chain/${f}`, "utf8");
  const main = `const { App, TerraformStack, DataResource } = require("cdktf");
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${busyMs});
// skipValidation: cdktf otherwise runs \`terraform version\` once per resource (~0.1 s each), and the synth alone would outlast the timeout.
const app = new App({ skipValidation: true });
for (let i = 0; i < ${count}; i++) {
  const stack = new TerraformStack(app, "s" + String(i).padStart(3, "0"));
  new DataResource(stack, "thing", { input: "from-" + i });
}
app.synth();
`;
  return { "app/main.js": main, "app/cdktf.json": fixture("cdktf.json"), "app/package.json": fixture("package.json"), "app/package-lock.json": fixture("package-lock.json") };
}

/**
 * The job's time is up: the clock passes PLANGATE_JOB_TIMEOUT, then keeps
 * going as a real one does (a SIGTERM's grace, a later step's deadline)
 * until the plan check completes and the queue is drained.
 */
async function timeUp(sha: string, waitMs: number): Promise<void> {
  clock.advance(TIMEOUT_S * 1000);
  const moving = clock.keepMoving(1000, 100);
  try {
    await waitFor("plangate/plan", () => prs.check("plangate/plan", sha)?.status === "completed", waitMs);
    await queueDrained(h.db);
  } finally {
    moving();
  }
}

const stackRuns = async (sha: string) =>
  (await h.db.pool.query<{ n: number }>("select count(*)::int as n from runs where sha = $1 and parent_run_id is not null and status = 'succeeded'", [sha])).rows[0]!.n;

engineTest(`${STACKS} stacks under PLANGATE_JOB_TIMEOUT=${TIMEOUT_S}s: the program fails at the timeout naming it, and frees its slot and lock`, async () => {
  const m = await underAttack(h.url, async () => {
    const p = await prs.openNoWait(manyStacks(STACKS), ["app/main.js"]);
    // Three stacks plan; then the job's time is up, in the middle of the fourth.
    await waitFor("three stacks planned", async () => (await stackRuns(p.sha)) >= 3, 300_000);
    await timeUp(p.sha, 300_000);
    return p;
  });
  const p = m.result;
  try {
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
    const { rows } = await h.db.pool.query<{ project: string; status: string; error: { message: string } | null }>("select project, status, error from runs where sha = $1 order by id", [p.sha]);
    const program = rows.find((r) => r.project === "app")!;
    console.log(`${STACKS} stacks: ${rows.length - 1} stack runs; memory +${m.rssGrowthMb} MB, slowest /healthz ${m.slowestHealthzMs} ms`);
    expect(program.status).toBe("failed");
    expect(program.error?.message).toMatch(new RegExp(`^timed out after ${TIMEOUT_S} s \\(PLANGATE_JOB_TIMEOUT\\), which bounds the synth and all stacks together: \\d+ of ${STACKS} stacks planned$`));
    // The bound itself: the timeout ended the program's job; no stack was begun after it.
    expect(rows.length - 1).toBeLessThan(10);
    expect(prs.comments(p).at(-1)).toContain("PLANGATE_JOB_TIMEOUT");
    // The stacks planned before the timeout do not make the program approvable.
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Plan failed: nothing to approve" } });
    expect(m.healthzAnswers).toBeGreaterThan(0);
    expect(m.rssGrowthMb).toBeLessThan(300);
    // The slot and the project's lock are free: the same program, now small, plans on the next push.
    const small = await prs.push(p, { "app/main.js": manyStacks(1)["app/main.js"]! }, ["app/main.js"]);
    expect(prs.check("plangate/plan", small.sha)?.conclusion).toBe("success");
  } finally {
    await prs.close(p); // the PR holds the project's lock: the next test must not inherit it
  }
});

engineTest("a synth that outlasts PLANGATE_JOB_TIMEOUT fails naming the setting", async () => {
  const marker = `busy-${process.pid}-${Date.now()}`;
  const p = await prs.openNoWait({ ...manyStacks(1, Infinity), "app/cdktf.json": JSON.stringify({ language: "javascript", app: `node main.js ${marker}` }) }, ["app/main.js"]);
  // The synth is running (its dependencies installed): now its time is up.
  await waitFor("the synth to run", () => processesNamed(marker).length > 0, 300_000);
  await timeUp(p.sha, 120_000);
  expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
  const { rows } = await h.db.pool.query<{ status: string; error: { message: string } | null }>("select status, error from runs where sha = $1 and project = 'app'", [p.sha]);
  expect(rows[0]).toMatchObject({ status: "failed", error: { message: `timed out after ${TIMEOUT_S} s (PLANGATE_JOB_TIMEOUT), in synth` } });
  expect(prs.comments(p).at(-1)).toContain("PLANGATE_JOB_TIMEOUT");
  expect(await leftAfterKill(marker)).toEqual([]);
  await prs.close(p);
});

test("a 60,000-stack dependency chain is ordered (and its dependencies kept) without overflowing the call stack", () => {
  const chain: SynthesizedStack[] = Array.from({ length: 60_000 }, (_, i) => ({ name: `s${i}`, dir: `d${i}`, dependencies: i ? [`s${i - 1}`] : [] }));
  const ordered = orderStacks([...chain].reverse());
  expect(Array.isArray(ordered) && ordered.map((s) => s.name)).toEqual(chain.map((s) => s.name));
  expect(withDependencies(ordered as SynthesizedStack[], ["s59999"])).toHaveLength(60_000);
  const cycle = chain.map((s, i) => (i === 0 ? { ...s, dependencies: ["s59999"] } : s));
  expect(orderStacks(cycle)).toMatch(/^stack dependency cycle through s\d+$/);
});
