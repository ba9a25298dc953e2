import { execFileSync } from "node:child_process";
import { jest } from "@jest/globals";
import pg from "pg";
import { closePullRequest, engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(240_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
const REPO = `${OWNER}/${NAME}`;
const AUTHOR = "Codertocat"; // the example payloads' PR author
let h: Harness;
let repo: GitRepo;
let schema: string;
let pr = 200;

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  schema = `tfstate_apply_${Date.now()}`;
  for (const [user, permission] of [["alice", "write"], ["bob", "write"], ["carol", "write"], ["reader", "read"]]) h.fake.permissions.set(`${REPO}:${user}`, permission!);
  h.fake.teams.set(`${OWNER}/infra`, ["carol"]);
  repo.commit({ "README.md": "root", ...project("infra", { r: '"v0"' }) });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** A root module at `dir` with the pg backend (state in this test's Postgres) and terraform_data resources. */
function project(dir: string, resources: Record<string, string>, extra = ""): Record<string, string> {
  const backend = `terraform {\n  backend "pg" {\n    conn_str    = "${h.db.url}?sslmode=disable"\n    schema_name = "${schema}_${dir.replace(/\W/g, "_")}"\n  }\n}\n`;
  const body = Object.entries(resources).map(([n, input]) => `resource "terraform_data" "${n}" {\n  input = ${input}\n}\n`).join("\n");
  return { [`${dir}/main.tf`]: backend + body + extra };
}

interface Pr {
  number: number;
  branch: string;
  sha: string;
}

async function open(files: Record<string, string>, changed: string[]): Promise<Pr> {
  const number = ++pr;
  const branch = `pr-${number}`;
  const sha = repo.commit(files, branch);
  return planned({ number, branch, sha }, "opened", changed);
}

async function push(p: Pr, files: Record<string, string>, changed: string[]): Promise<Pr> {
  return planned({ ...p, sha: repo.commit(files, p.branch) }, "synchronize", changed);
}

async function planned(p: Pr, action: string, changed: string[]): Promise<Pr> {
  h.fake.pullFiles.set(`${REPO}#${p.number}`, changed);
  h.fake.pulls.set(`${REPO}#${p.number}`, { headSha: p.sha, author: AUTHOR });
  const payload = examplePayload("pull_request", action);
  Object.assign(payload.pull_request, { number: p.number, draft: false });
  payload.pull_request.head.sha = p.sha;
  expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);
  await waitFor("plangate/plan", () => check("plangate/plan", p.sha)?.status === "completed");
  await queueDrained(h.db);
  return p;
}

const check = (name: string, sha: string) => h.fake.checkRuns.filter((c) => c.name === name && c.head_sha === sha).at(-1);

async function review(p: Pr, user: string, state = "APPROVED", commitId = p.sha) {
  const list = h.fake.reviews.get(`${REPO}#${p.number}`) ?? [];
  list.push({ user, state, commit_id: commitId });
  h.fake.reviews.set(`${REPO}#${p.number}`, list);
  const payload = examplePayload("pull_request_review", "submitted");
  payload.pull_request = { ...payload.pull_request, number: p.number, head: { ...payload.pull_request.head, sha: p.sha } };
  payload.review = { ...payload.review, state: state.toLowerCase(), commit_id: commitId, user: { ...payload.review.user, login: user } };
  expect((await deliver(h.url, "pull_request_review", payload, WEBHOOK_SECRET)).status).toBe(200);
  await queueDrained(h.db);
}

async function comment(p: Pr, body: string, user: string) {
  const payload = examplePayload("issue_comment", "created");
  payload.issue = { ...payload.issue, number: p.number, pull_request: { url: "x" } };
  payload.comment = { ...payload.comment, id: Math.floor(Math.random() * 1e9), body, user: { ...payload.comment.user, login: user, type: "User" } };
  payload.sender = { ...payload.sender, login: user, type: "User" };
  expect((await deliver(h.url, "issue_comment", payload, WEBHOOK_SECRET)).status).toBe(200);
  await queueDrained(h.db);
}

async function merge(p: Pr): Promise<string> {
  const mergeSha = repo.merge(p.branch);
  await closePullRequest(h, p.number, p.sha, { mergeSha, mergedBy: "alice" });
  return mergeSha;
}

const comments = (p: Pr) => h.fake.commentsOn(REPO, p.number).map((c) => asShown(c.body));
const audit = async (p: Pr) => (await h.db.pool.query("select action, project, sha, run_id, details from audit_events where pull_number = $1 order by id", [p.number])).rows;
async function state(dir: string): Promise<string> {
  const client = new pg.Client({ connectionString: h.db.url });
  await client.connect();
  try {
    const { rows } = await client.query(`select data from ${schema}_${dir}.states where name = 'default'`);
    return rows[0]?.data ?? "";
  } finally {
    await client.end();
  }
}
const locks = async () => (await h.db.pool.query("select project, pull_number from locks order by project")).rows;

describe("approval, merge and apply", () => {
  engineTest("full lifecycle: plan, approval pending, approval on the head, merge, apply of the reviewed change", async () => {
    const p = await open(project("infra", { r: '"v1"' }), ["infra/main.tf"]);
    expect(check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect(check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for infra" } });
    expect(await locks()).toEqual([{ project: "infra", pull_number: p.number }]);

    await review(p, "alice");
    expect(check("plangate/approval", p.sha)).toMatchObject({ status: "completed", conclusion: "success", output: { title: "Approved by @alice" } });

    const mergeSha = await merge(p);
    expect(check("plangate/apply", mergeSha)).toMatchObject({ status: "completed", conclusion: "success" });
    expect(check("plangate/apply", p.sha)).toBeUndefined();
    const applied = comments(p).at(-1)!;
    expect(applied).toContain(`✅ plangate applied \`${mergeSha.slice(0, 7)}\` (merge of this pull request)`);
    expect(applied).toContain("| `infra` | `default` | ✅ applied |");
    expect(applied).toContain("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.");
    expect(await state("infra")).toMatch(/"value":\s*"v1"/);
    expect(await locks()).toEqual([]);

    const actions = (await audit(p)).map((a) => a.action).filter((a) => ["plan.succeeded", "approval.changed", "apply.started", "apply.succeeded"].includes(a));
    expect(actions).toEqual(["plan.succeeded", "approval.changed", "approval.changed", "apply.started", "apply.succeeded"]);
    const started = (await audit(p)).find((a) => a.action === "apply.started")!;
    expect(started.sha).toBe(mergeSha);
    expect(started.details.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(execFileSync("node", ["bin/plangate.js", "audit", "verify"], { env: { ...process.env, DATABASE_URL: h.db.url }, encoding: "utf8" })).toContain("audit chain intact");
  });

  engineTest("an approval of an older head does not approve the newer plan", async () => {
    const p = await open(project("infra", { r: '"v2"' }), ["infra/main.tf"]);
    await review(p, "alice");
    expect(check("plangate/approval", p.sha)?.conclusion).toBe("success");
    const newer = await push(p, project("infra", { r: '"v3"' }), ["infra/main.tf"]);
    expect(check("plangate/approval", newer.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for infra" } });
    await closePullRequest(h, p.number, newer.sha);
  });

  engineTest("the author's approval and an approver outside approvals.teams do not count", async () => {
    const config = { ".plangate.yml": "version: 1\nprojects:\n  - dir: infra\n    approvals: { required: 1, teams: [infra] }\n" };
    const p = await open({ ...config, ...project("infra", { r: '"v4"' }) }, ["infra/main.tf"]);
    await review(p, AUTHOR);
    await review(p, "bob");
    expect(check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval from team infra for infra" } });
    await review(p, "carol");
    expect(check("plangate/approval", p.sha)).toMatchObject({ conclusion: "success", output: { title: "Approved by @carol" } });
    await closePullRequest(h, p.number, p.sha);
  });

  engineTest("a destroy with destroy_required: 2 and one approval is not approved", async () => {
    const config = { ".plangate.yml": "version: 1\nprojects:\n  - dir: infra\n    approvals: { required: 1, destroy_required: 2 }\n" };
    const p = await open({ ...config, ...project("infra", {}) }, ["infra/main.tf"]);
    expect(comments(p).at(-1)).toContain("This plan **destroys or replaces 1 resource**");
    await review(p, "alice");
    expect(check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for infra" } });
    await review(p, "bob");
    expect(check("plangate/approval", p.sha)?.conclusion).toBe("success");
    await closePullRequest(h, p.number, p.sha);
  });

  engineTest("when the base branch changed the resource after approval, the merge is not applied", async () => {
    repo.commit({ "infra/locals.tf": 'locals {\n  suffix = "a"\n}\n' }, "main");
    const p = await open(project("infra", { r: 'join("-", ["pr", local.suffix])' }), ["infra/main.tf"]);
    expect(comments(p).at(-1)).toContain('+ input = "pr-a"');
    await review(p, "alice");
    expect(check("plangate/approval", p.sha)?.conclusion).toBe("success");
    // main moves on: at the merge commit the same resource gets another value
    repo.commit({ "infra/locals.tf": 'locals {\n  suffix = "b"\n}\n' }, "main");
    const mergeSha = await merge(p);
    expect(check("plangate/apply", mergeSha)).toMatchObject({ conclusion: "failure", output: { title: "Not applied" } });
    const denied = comments(p).at(-1)!;
    expect(denied).toContain("The merge commit's plan differs from the plan that was approved.");
    expect(denied).toContain("The change that would be applied is not the change that was reviewed. Nothing was applied.");
    expect((await audit(p)).map((a) => a.action)).toContain("apply.denied");
    expect((await audit(p)).map((a) => a.action)).not.toContain("apply.started");
    expect(await state("infra")).not.toContain("pr-");
    expect(await locks()).toEqual([]);
  });

  engineTest("a /plan -p of one project does not drop the other projects planned on the same head from the merge", async () => {
    const p = await open({ ...project("m1", { one: '"1"' }), ...project("m2", { two: '"2"' }) }, ["m1/main.tf", "m2/main.tf"]);
    await comment(p, "/plan -p m1", "alice");
    await waitFor("the /plan", async () => (await h.db.pool.query("select 1 from runs where sha = $1", [p.sha])).rowCount === 3);
    await queueDrained(h.db);
    await review(p, "alice");
    expect(check("plangate/approval", p.sha)?.conclusion).toBe("success");
    const mergeSha = await merge(p);
    expect(check("plangate/apply", mergeSha)?.conclusion).toBe("success");
    expect(comments(p).at(-1)).toContain("| `m1` | `default` | ✅ applied |");
    expect(comments(p).at(-1)).toContain("| `m2` | `default` | ✅ applied |");
    expect(await state("m1")).toMatch(/"value":\s*"1"/);
    expect(await state("m2")).toMatch(/"value":\s*"2"/);
  });

  engineTest("a PR merged without approval is not applied", async () => {
    const p = await open(project("infra", { r: '"unapproved"' }), ["infra/main.tf"]);
    const mergeSha = await merge(p);
    expect(check("plangate/apply", mergeSha)?.conclusion).toBe("failure");
    expect(comments(p).at(-1)).toContain("This pull request was merged without the required approvals");
    expect((await audit(p)).filter((a) => a.action === "apply.denied")).toHaveLength(1);
    expect(await state("infra")).not.toContain("unapproved");
  });
});

describe("/apply and locks", () => {
  engineTest("/apply by a reader is refused; by a writer after approval it applies; a second /apply has nothing to apply", async () => {
    const config = { ".plangate.yml": "version: 1\nprojects:\n  - dir: cmd\n    apply: command\n" };
    repo.commit(config, "main"); // the apply mode is a rule: the base branch decides it
    const p = await open({ ...config, ...project("cmd", { c: '"by-command"' }) }, ["cmd/main.tf"]);
    expect(comments(p).at(-1)).toContain("then comment `/apply`.");
    await comment(p, "/apply", "reader");
    expect(comments(p).at(-1)).toContain("@reader `/apply` needs write permission on this repository (yours: read). Nothing was run.");
    await comment(p, "/apply", "alice");
    expect(comments(p).at(-1)).toContain("The required approvals on");
    expect(check("plangate/apply", p.sha)?.conclusion).toBe("failure");
    await review(p, "bob");
    await comment(p, "/apply", "alice");
    expect(comments(p).at(-1)).toContain("| `cmd` | `default` | ✅ applied |");
    expect(check("plangate/apply", p.sha)?.conclusion).toBe("success");
    expect(await state("cmd")).toMatch(/"value":\s*"by-command"/);
    await comment(p, "/apply", "alice");
    expect(comments(p).at(-1)).toContain("nothing to apply on");
    expect(comments(p).at(-1)).toContain("its reviewed plans were already applied");
    const actions = (await audit(p)).map((a) => a.action);
    expect(actions.filter((a) => a === "command.rejected")).toHaveLength(1);
    expect(actions.filter((a) => a === "apply.succeeded")).toHaveLength(1);
    await closePullRequest(h, p.number, p.sha);
    repo.commit({ ".plangate.yml": null }, "main");
  });

  engineTest("a second PR on a locked project is refused naming the first, and plans after /unlock", async () => {
    const first = await open(project("infra", { r: '"first"' }), ["infra/main.tf"]);
    const second = await open(project("infra", { r: '"second"' }), ["infra/main.tf"]);
    expect(check("plangate/plan", second.sha)?.conclusion).toBe("failure");
    expect(comments(second).at(-1)).toContain(`\`infra\` (workspace \`default\`) is locked by #${first.number}`);
    await comment(first, "/unlock", "alice");
    expect(comments(first).at(-1)).toContain("released this pull request's locks and discarded its plans");
    expect(comments(first).at(-1)).toContain("- `infra` (workspace `default`)");
    expect((await audit(first)).map((a) => a.action)).toContain("lock.released");
    await comment(second, "/plan", "alice");
    await waitFor("the second PR's plan", () => h.fake.checkRuns.filter((c) => c.name === "plangate/plan" && c.head_sha === second.sha).length === 2);
    await queueDrained(h.db);
    expect(check("plangate/plan", second.sha)?.conclusion).toBe("success");
    expect(await locks()).toEqual([{ project: "infra", pull_number: second.number }]);
    await closePullRequest(h, first.number, first.sha);
    await closePullRequest(h, second.number, second.sha);
    expect(await locks()).toEqual([]);
  });
});
