import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(300_000);

let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const PROJECTS = Array.from({ length: 10 }, (_, i) => `p${String(i).padStart(2, "0")}`);
const project = (input: string) => `resource "terraform_data" "x" {\n  input = "${input}"\n}\n`;
const allProjects = (input: string) => Object.fromEntries(PROJECTS.map((p) => [`${p}/main.tf`, project(`${p}-${input}`)]));
const changedFiles = PROJECTS.map((p) => `${p}/main.tf`);

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "base" });
  prs = new PullRequests(h, repo, "Codertocat", 700);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** The mutating GitHub calls (installation tokens apart) made while `act` ran, as "METHOD path". */
async function writesDuring(act: () => Promise<unknown>): Promise<string[]> {
  const from = h.fake.requests.length;
  await act();
  await queueDrained(h.db);
  return h.fake.requests
    .slice(from)
    .filter((r) => ["POST", "PATCH", "PUT", "DELETE"].includes(r.method) && r.path.startsWith("/api/v3/") && !r.path.includes("/access_tokens"))
    .map((r) => `${r.method} ${r.path.replace("/api/v3/repos/Codertocat/Hello-World", "").replace(/\/\d+$/, "/:id")}`);
}

/** Delivers pull_request.synchronize for `sha` without telling the fake it is the head (a late or replayed event). */
async function deliverSynchronize(p: Pr, sha: string, delivery: string): Promise<void> {
  const payload = examplePayload("pull_request", "synchronize");
  Object.assign(payload.pull_request, { number: p.number, draft: false });
  payload.pull_request.head.sha = sha;
  expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET, delivery)).status).toBe(200);
}

describe("GitHub writes per plan", () => {
  engineTest("a 10-project PR costs at most 5 writes: comment, plan check, label, approval check; a re-plan skips the unchanged label", async () => {
    let p: Pr | undefined;
    const first = await writesDuring(async () => (p = await prs.open(allProjects("a"), changedFiles)));
    const comment = `POST /issues/${p!.number}/comments`;
    const labels = `PUT /issues/${p!.number}/labels`;
    // The comment comes first; a plan still running after a second opens plangate/plan in progress before it.
    const quick = [comment, "POST /check-runs", labels, "POST /check-runs"];
    const slow = ["POST /check-runs", comment, "PATCH /check-runs/:id", labels, "POST /check-runs"];
    expect([quick, slow]).toContainEqual(first);
    const comments = prs.comments(p!);
    expect(comments).toHaveLength(1);
    for (const name of PROJECTS) expect(comments[0]).toContain(name);
    const plan = prs.check("plangate/plan", p!.sha)!;
    expect(plan).toMatchObject({ status: "completed", conclusion: "success" });
    for (const name of PROJECTS) expect(plan.output?.text ?? plan.output?.summary).toContain(name);
    expect(h.fake.issueLabels.get(`${prs.full}#${p!.number}`)).toEqual(["plangate:changes"]);

    // Still changes: the label stays as it is, so no label write.
    let q: Pr | undefined;
    const second = await writesDuring(async () => (q = await prs.push(p!, allProjects("b"), changedFiles)));
    const edit = "PATCH /issues/comments/:id";
    expect([
      [edit, "POST /check-runs", "POST /check-runs"],
      ["POST /check-runs", edit, "PATCH /check-runs/:id", "POST /check-runs"],
    ]).toContainEqual(second);
    expect(prs.comments(q!)).toHaveLength(1);
    expect(prs.comments(q!)[0]).toContain(q!.sha.slice(0, 7));
  });

  engineTest("a label someone else put on the PR stays when plangate's label changes", async () => {
    const p = await prs.open({ "solo/main.tf": project("1") }, ["solo/main.tf"]);
    h.fake.issueLabels.set(`${prs.full}#${p.number}`, ["team:infra", ...(h.fake.issueLabels.get(`${prs.full}#${p.number}`) ?? [])]);
    const writes = await writesDuring(() => prs.push(p, { "solo/main.tf": "" }, ["solo/main.tf"]));
    expect(writes.filter((w) => w.includes("/labels"))).toEqual([`PUT /issues/${p.number}/labels`]);
    expect(h.fake.issueLabels.get(`${prs.full}#${p.number}`)).toEqual(["team:infra", "plangate:no-changes"]);
  });
});

describe("the newest head wins", () => {
  engineTest("an event for a head the PR has moved past plans nothing and writes nothing", async () => {
    const p = await prs.open({ "late/main.tf": project("1") }, ["late/main.tf"]);
    const newer = await prs.push(p, { "late/main.tf": project("2") }, ["late/main.tf"]);
    const groups = async () => (await h.db.pool.query("select sha from run_groups where pull_number = $1 order by id", [p.number])).rows.map((r) => r.sha);
    expect(await groups()).toEqual([p.sha, newer.sha]);
    // GitHub redelivers the older push's event late (a new delivery id, as a redelivery has).
    const writes = await writesDuring(() => deliverSynchronize(p, p.sha, "late-redelivery-1"));
    expect(writes).toEqual([]);
    expect(await groups()).toEqual([p.sha, newer.sha]);
    expect(prs.comments(newer)).toHaveLength(1);
    expect(prs.comments(newer)[0]).toContain(newer.sha.slice(0, 7));
  });

  engineTest("a push's own event, arriving after an older event's job planned its head, plans nothing and writes nothing", async () => {
    const number = 781;
    const branch = `pr-${number}`;
    const older = repo.commit({ "own/main.tf": project("v1") }, branch);
    const newest = repo.commit({ "own/main.tf": project("v2") }, branch);
    h.fake.pullFiles.set(`${prs.full}#${number}`, ["own/main.tf"]);
    h.fake.pulls.set(`${prs.full}#${number}`, { headSha: newest });
    const p = { number, branch, sha: newest };
    // The older push's event comes first and its job plans the PR's head as it is now: the newest.
    await writesDuring(() => deliverSynchronize(p, older, "own-older"));
    const groups = async () => (await h.db.pool.query("select sha from run_groups where pull_number = $1", [number])).rows.map((r) => r.sha);
    expect(await groups()).toEqual([newest]);
    // Then the newest push's own event.
    expect(await writesDuring(() => deliverSynchronize(p, newest, "own-newest"))).toEqual([]);
    expect(await groups()).toEqual([newest]);
    const started = await h.db.pool.query("select count(*)::int as n from audit_events where action = 'plan.started' and pull_number = $1", [number]);
    expect(started.rows[0].n).toBe(1);
    expect(h.fake.commentsOn(prs.full, number)).toHaveLength(1);
  });

  engineTest("a reopened PR plans its head again, though it was planned before it was closed", async () => {
    const p = await prs.open({ "reopen/main.tf": project("1") }, ["reopen/main.tf"]);
    const payload = examplePayload("pull_request", "reopened");
    Object.assign(payload.pull_request, { number: p.number, draft: false });
    payload.pull_request.head.sha = p.sha;
    expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET, "reopen-1")).status).toBe(200);
    await queueDrained(h.db);
    const { rows } = await h.db.pool.query("select sha from run_groups where pull_number = $1 and kind = 'plan'", [p.number]);
    expect(rows.map((r) => r.sha)).toEqual([p.sha, p.sha]);
  });

  engineTest("a burst of pushes, delivered at once and out of order, plans the newest head once", async () => {
    const number = 780;
    const branch = `pr-${number}`;
    const heads = [1, 2, 3, 4, 5].map((i) => repo.commit({ "burst/main.tf": project(`v${i}`) }, branch));
    const newest = heads.at(-1)!;
    h.fake.pullFiles.set(`${prs.full}#${number}`, ["burst/main.tf"]);
    h.fake.pulls.set(`${prs.full}#${number}`, { headSha: newest });
    const p = { number, branch, sha: newest };
    // GitHub delivers late and out of order: the newest push's event comes third.
    const order = [heads[0]!, heads[1]!, newest, heads[3]!, heads[2]!];
    const writes = await writesDuring(() => Promise.all(order.map((sha, i) => deliverSynchronize(p, sha, `burst-${i}`))));
    const { rows } = await h.db.pool.query("select sha from run_groups where pull_number = $1", [number]);
    expect(rows.map((r) => r.sha)).toEqual([newest]);
    expect(writes.filter((w) => w.startsWith("POST /issues/"))).toHaveLength(1);
    const comments = h.fake.commentsOn(prs.full, number);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain(newest.slice(0, 7));
    const { rows: deliveries } = await h.db.pool.query("select count(*)::int as n from webhook_deliveries where id like 'burst-%'");
    expect(deliveries[0].n).toBe(5); // every event was accepted and recorded
  });

  engineTest("a slow plan of an older head that finishes last never replaces the newer head's comment", async () => {
    // The older head changes a big project (a slow plan); the newer head reverts it and changes a small one.
    const number = 790;
    const bigProject = `resource "terraform_data" "many" {\n  count = 4000\n  input = "v-\${count.index}"\n}\n`;
    const older = repo.commit({ "big/main.tf": bigProject, "small/main.tf": project("old") }, `pr-${number}`);
    h.fake.pullFiles.set(`${prs.full}#${number}`, ["big/main.tf", "small/main.tf"]);
    h.fake.pulls.set(`${prs.full}#${number}`, { headSha: older });
    await deliverSynchronize({ number, branch: `pr-${number}`, sha: older }, older, "slow-older");
    await waitFor("the older head's big plan to start", async () => {
      const { rows } = await h.db.pool.query("select 1 from runs where sha = $1 and project = 'big' and status = 'running'", [older]);
      return rows.length === 1;
    });
    const newer = repo.commit({ "big/main.tf": null, "small/main.tf": project("new") }, `pr-${number}`);
    h.fake.pullFiles.set(`${prs.full}#${number}`, ["small/main.tf"]);
    h.fake.pulls.set(`${prs.full}#${number}`, { headSha: newer });
    await deliverSynchronize({ number, branch: `pr-${number}`, sha: newer }, newer, "fast-newer");
    await queueDrained(h.db);

    const reported = async (sha: string) =>
      (await h.db.pool.query<{ reported_at: Date }>("select reported_at from run_groups where sha = $1 and pull_number = $2", [sha, number])).rows[0]!.reported_at;
    // The scenario happened: the older head's plan was reported after the newer one's.
    expect((await reported(older)).getTime()).toBeGreaterThan((await reported(newer)).getTime());
    const comments = h.fake.commentsOn(prs.full, number);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain(newer.slice(0, 7));
    expect(comments[0]!.body).not.toContain(older.slice(0, 7));
    expect(prs.check("plangate/plan", newer)).toMatchObject({ status: "completed", conclusion: "success" });
    expect(prs.check("plangate/approval", newer)).toBeDefined();
    // The older head's own check run, if it was opened, is completed: never left in progress.
    const olderCheck = prs.check("plangate/plan", older);
    if (olderCheck) expect(olderCheck.status).toBe("completed");
    expect(prs.check("plangate/approval", older)).toBeUndefined();
  });
});
