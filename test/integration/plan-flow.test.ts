import { execFileSync } from "node:child_process";
import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(180_000);

const REPO = "Codertocat/Hello-World";

let h: Harness;
let repo: GitRepo;
let schema: string;

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" }); // the base branch: its .plangate.yml (none here) gives the rules
  schema = `tfstate_${Date.now()}`;
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** A root module with the pg backend (state in the test's Postgres) and the given terraform_data resources. */
function module(resources: Record<string, string>): string {
  const backend = `terraform {\n  backend "pg" {\n    conn_str    = "${h.db.url}?sslmode=disable"\n    schema_name = "${schema}"\n  }\n}\n`;
  return backend + Object.entries(resources).map(([name, input]) => `resource "terraform_data" "${name}" {\n  input = ${input}\n}\n`).join("\n");
}

function pullRequestEvent(action: string, sha: string) {
  const payload = examplePayload("pull_request", action);
  payload.pull_request.head.sha = sha;
  payload.pull_request.draft = false;
  return payload;
}

async function planFor(action: string, files: Record<string, string | null>, changed: string[]) {
  const sha = repo.commit(files, "feature");
  h.fake.pullFiles.set(`${REPO}#2`, changed);
  h.fake.pulls.set(`${REPO}#2`, { headSha: sha, author: "Codertocat" });
  const res = await deliver(h.url, "pull_request", pullRequestEvent(action, sha), WEBHOOK_SECRET);
  expect(res.status).toBe(200);
  const check = await waitFor("plangate/plan to complete", () =>
    h.fake.checkRuns.find((c) => c.name === "plangate/plan" && c.head_sha === sha && c.status === "completed"),
  );
  await queueDrained(h.db);
  return { sha, check };
}

async function auditActions(sha: string) {
  const { rows } = await h.db.pool.query("select action, project, sha, run_id from audit_events where sha = $1 order by id", [sha]);
  return rows;
}

function auditVerify(): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync("node", ["bin/plangate.js", "audit", "verify"], { env: { ...process.env, DATABASE_URL: h.db.url }, encoding: "utf8" }) };
  } catch (error) {
    const e = error as { status: number; stdout: string; stderr: string };
    return { code: e.status, out: e.stdout + e.stderr };
  }
}

describe("pull request to plan comment", () => {
  engineTest("opened: one comment naming the resource, plangate/plan success, audit rows, audit verify passes", async () => {
    const { sha, check } = await planFor("opened", { "infra/main.tf": module({ first: '"one"' }), "README.md": "hi" }, ["infra/main.tf", "README.md"]);

    expect(check.conclusion).toBe("success");
    expect(check.output?.title).toBe("1 to add, 0 to change, 0 to destroy, 0 to replace");
    expect(check.output?.summary).toContain("| `infra` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");

    const comments = h.fake.commentsOn(REPO, 2);
    expect(comments).toHaveLength(1);
    const body = comments[0]!.body;
    expect(body).toContain(`plangate plan for \`${sha.slice(0, 7)}\``);
    expect(body).toContain("| `infra` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");
    expect(body).toContain("`terraform_data.first`");
    expect(body).toContain('+ input = "one"');
    expect(body).toContain("+ output = (known after apply)");
    expect(body).not.toContain("[!CAUTION]");
    expect(body).toContain(`**Next:** get the approvals \`plangate/approval\` asks for on \`${sha.slice(0, 7)}\`, then merge: plangate plans the merge commit and applies exactly this change.`);

    const audit = await auditActions(sha);
    expect(audit.map((a) => a.action)).toEqual(["lock.acquired", "plan.started", "plan.succeeded", "approval.changed"]);
    expect(audit.filter((a) => a.action.startsWith("plan.")).every((a) => a.project === "infra" && a.run_id !== null)).toBe(true);

    const { rows } = await h.db.pool.query("select r.status, length(p.plan_file) as sealed, p.plan_file from runs r join plans p on p.run_id = r.id where r.sha = $1", [sha]);
    expect(rows).toHaveLength(1);
    expect(rows[0].status).toBe("succeeded");
    // The stored plan is sealed: terraform's plan is a zip, which starts with "PK".
    expect(rows[0].plan_file.subarray(0, 2).toString()).not.toBe("PK");

    const verify = auditVerify();
    expect(verify.code).toBe(0);
    expect(verify.out).toContain("audit chain intact");
  });

  engineTest("synchronize with a second resource edits the same comment", async () => {
    const { sha, check } = await planFor("synchronize", { "infra/main.tf": module({ first: '"one"', second: '"two"' }) }, ["infra/main.tf"]);
    expect(check.conclusion).toBe("success");
    const comments = h.fake.commentsOn(REPO, 2);
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain(sha.slice(0, 7));
    expect(comments[0]!.body).toContain("`terraform_data.first`");
    expect(comments[0]!.body).toContain("`terraform_data.second`");
    expect(comments[0]!.body).toContain("| `infra` | `default` | ✅ planned | 2 | 0 | 0 | 0 |");
  });

  engineTest("invalid HCL fails plangate/plan and the comment shows terraform's error", async () => {
    const { sha, check } = await planFor("synchronize", { "infra/main.tf": module({ first: '"one"' }) + "\nresource \"terraform_data\" {\n" }, ["infra/main.tf"]);
    expect(check.conclusion).toBe("failure");
    expect(check.output?.title).toBe("Plan failed: infra");
    const body = h.fake.commentsOn(REPO, 2)[0]!.body;
    expect(body).toContain(sha.slice(0, 7));
    expect(body).toContain("❌ failed");
    expect(body).toMatch(/terraform (init|plan) failed/);
    expect(body).toContain("**Next:** fix what failed and push");
    expect(body).toMatch(/Error: (Unclosed configuration block|Missing name for resource|Argument or block definition required)/);
    expect((await auditActions(sha)).map((a) => a.action)).toEqual(["plan.started", "plan.failed", "approval.changed"]);
  });

  engineTest("the same delivery twice gives one plan and one comment", async () => {
    const sha = repo.commit({ "infra/main.tf": module({ first: '"again"' }) }, "feature");
    h.fake.pullFiles.set(`${REPO}#2`, ["infra/main.tf"]);
    h.fake.pulls.set(`${REPO}#2`, { headSha: sha, author: "Codertocat" });
    const payload = pullRequestEvent("synchronize", sha);
    const first = await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET, "dup-delivery-1");
    const second = await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET, "dup-delivery-1");
    expect([first.status, second.status]).toEqual([200, 200]);
    await waitFor("the plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.status === "completed"));
    await queueDrained(h.db);
    expect(h.fake.checkRuns.filter((c) => c.head_sha === sha).map((c) => c.name)).toEqual(["plangate/plan", "plangate/approval"]);
    const groups = await h.db.pool.query("select id from run_groups where sha = $1", [sha]);
    expect(groups.rowCount).toBe(1);
    expect(h.fake.commentsOn(REPO, 2)).toHaveLength(1);
    expect((await auditActions(sha)).map((a) => a.action)).toEqual(["plan.started", "plan.succeeded", "approval.changed"]);
  });

  test("a bad signature is refused with 4xx and records nothing", async () => {
    const payload = pullRequestEvent("opened", "a".repeat(40));
    const res = await deliver(h.url, "pull_request", payload, "not-the-secret", "bad-signature-1");
    expect(res.status).toBe(400);
    expect(res.text).toContain("signature does not match");
    const { rowCount } = await h.db.pool.query("select 1 from webhook_deliveries where id = 'bad-signature-1'");
    expect(rowCount).toBe(0);
  });

  test("a draft pull request is recorded and not planned", async () => {
    const payload = pullRequestEvent("opened", "b".repeat(40));
    payload.pull_request.draft = true;
    const res = await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET, "draft-1");
    expect(res.status).toBe(200);
    const { rows } = await h.db.pool.query("select outcome from webhook_deliveries where id = 'draft-1'");
    expect(rows).toEqual([{ outcome: "ignored:draft" }]);
    await queueDrained(h.db);
    expect(h.fake.checkRuns.filter((c) => c.head_sha === "b".repeat(40))).toHaveLength(0);
  });

  engineTest("Re-run on plangate/plan plans the head again", async () => {
    const runs = h.fake.checkRuns.filter((c) => c.name === "plangate/plan").length;
    const head = h.fake.checkRuns.filter((c) => c.name === "plangate/plan").at(-1)!.head_sha;
    h.fake.pulls.set(`${REPO}#2`, { headSha: head, author: "Codertocat" });
    const payload = examplePayload("check_run", "rerequested");
    payload.repository = examplePayload("pull_request", "opened").repository;
    payload.check_run = { ...payload.check_run, name: "plangate/plan", head_sha: head, pull_requests: [{ number: 2, head: { sha: head, ref: "feature" }, base: { sha: head, ref: "main" } }] };
    expect((await deliver(h.url, "check_run", payload, WEBHOOK_SECRET)).status).toBe(200);
    await waitFor("a new plan", () => h.fake.checkRuns.filter((c) => c.name === "plangate/plan").length === runs + 1);
    await queueDrained(h.db);
    expect(h.fake.checkRuns.filter((c) => c.name === "plangate/plan").at(-1)).toMatchObject({ head_sha: head, status: "completed", conclusion: "success" });
  });

  test("the clone used the installation token as a header, never in a URL", () => {
    const gitRequests = h.fake.requests.filter((r) => r.path.includes(".git/"));
    expect(gitRequests.length).toBeGreaterThan(0);
    for (const r of gitRequests) expect(r.path).not.toMatch(/ghs_/);
    expect(gitRequests.some((r) => r.authorization?.startsWith("Basic "))).toBe(true);
  });
});
