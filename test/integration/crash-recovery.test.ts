import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(300_000);

const REPO = "Codertocat/Hello-World";
let h: Harness;
let repo: GitRepo;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  // The app here only receives webhooks: plans and applies run in worker processes this test kills.
  h = await startHarness({ PLANGATE_WORKERS: "0", PLANGATE_WORKER_STALE_AFTER: "2s" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  h.fake.permissions.set(`${REPO}:alice`, "write");
});
afterAll(async () => {
  for (const w of workers) kill(w);
  await h?.close();
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** `plangate worker` as its own process (and process group), with its own data dir. */
function startWorker(): ChildProcess {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "plangate-worker-"));
  chmodSync(dataDir, 0o755);
  const child = spawn("node", ["bin/plangate.js", "worker"], {
    env: { ...process.env, ...h.env, PLANGATE_WORKERS: "1", PLANGATE_DATA_DIR: dataDir, LOG_LEVEL: "error" },
    stdio: ["ignore", "ignore", "inherit"],
    detached: true,
  });
  workers.push(child);
  return child;
}

function kill(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // already gone
  }
}

const runStatus = async (sql: string, params: unknown[]) => (await h.db.pool.query(sql, params)).rows[0]?.status;
const comments = (n: number) => h.fake.commentsOn(REPO, n).map((c) => asShown(c.body));

async function openPr(number: number, files: Record<string, string>, changed: string[]) {
  const sha = repo.commit(files, `crash-${number}`);
  h.fake.pullFiles.set(`${REPO}#${number}`, changed);
  h.fake.pulls.set(`${REPO}#${number}`, { headSha: sha });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);
  return sha;
}

describe("a worker process killed", () => {
  engineTest("mid-plan: the job is retried by a new worker and completes", async () => {
    const slow = 'resource "terraform_data" "many" {\n  count = 15000\n  input = "${count.index}"\n}\n';
    const sha = await openPr(301, { "big/main.tf": slow }, ["big/main.tf"]);
    const first = startWorker();
    await waitFor("the plan to be running", async () => (await runStatus("select status from runs where sha = $1", [sha])) === "running", 120_000);
    await new Promise((r) => setTimeout(r, 1500)); // terraform is busy planning
    kill(first);
    expect(await runStatus("select status from runs where sha = $1", [sha])).toBe("running");

    startWorker();
    await waitFor("the retried plan", async () => (await runStatus("select status from runs where sha = $1", [sha])) === "succeeded", 240_000);
    await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 60_000);
    await queueDrained(h.db);
    expect(comments(301).join("\n")).toContain("| `big` | `default` | ✅ planned | 15000 | 0 | 0 | 0 |");
    const { rows } = await h.db.pool.query("select action from audit_events where sha = $1 and action like 'plan.%' order by id", [sha]);
    expect(rows.map((r) => r.action)).toEqual(["plan.started", "plan.succeeded"]);
  });

  engineTest("mid-apply: the apply is marked interrupted, the PR is told, and it is not applied again", async () => {
    const config = "version: 1\nprojects:\n  - dir: slow\n    apply: command\n    approvals: { required: 0 }\n";
    const slow = 'resource "terraform_data" "slow" {\n  input = "x"\n  provisioner "local-exec" {\n    command = "sleep 90"\n  }\n}\n';
    repo.commit({ ".plangate.yml": config }, "main"); // apply mode and approvals are the base branch's rules
    const sha = await openPr(302, { ".plangate.yml": config, "slow/main.tf": slow }, ["slow/main.tf"]);
    const first = startWorker();
    await waitFor("the plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 120_000);

    const payload = examplePayload("issue_comment", "created");
    payload.issue = { ...payload.issue, number: 302, pull_request: { url: "x" } };
    payload.comment = { ...payload.comment, id: 777, body: "/apply", user: { ...payload.comment.user, login: "alice", type: "User" } };
    payload.sender = { ...payload.sender, login: "alice", type: "User" };
    expect((await deliver(h.url, "issue_comment", payload, WEBHOOK_SECRET)).status).toBe(200);
    await waitFor("the apply to be running", async () => (await runStatus("select status from runs where kind = 'apply' and sha = $1", [sha])) === "running", 120_000);
    await new Promise((r) => setTimeout(r, 1500)); // terraform is inside the provisioner's sleep
    kill(first);

    startWorker();
    await waitFor("the interruption to be reported", async () => (await runStatus("select status from runs where kind = 'apply' and sha = $1", [sha])) === "interrupted", 120_000);
    await queueDrained(h.db);
    expect(comments(302).at(-1)).toContain(`plangate apply of \`${sha.slice(0, 7)}\` was interrupted`);
    expect(h.fake.checkRuns.filter((c) => c.head_sha === sha && c.name === "plangate/apply").at(-1)).toMatchObject({ conclusion: "failure", output: { title: "Apply interrupted" } });
    const { rows } = await h.db.pool.query("select action from audit_events where sha = $1 and action like 'apply.%' order by id", [sha]);
    expect(rows.map((r) => r.action)).toEqual(["apply.requested", "apply.started", "apply.interrupted"]);
    // A later /apply does not reuse the interrupted plan: it must be planned again.
    payload.comment.id = 778;
    expect((await deliver(h.url, "issue_comment", payload, WEBHOOK_SECRET)).status).toBe(200);
    await waitFor("the reply", () => comments(302).at(-1)?.includes("nothing to apply"), 60_000);
    expect(comments(302).at(-1)).toContain("the last apply was interrupted, so its plans are spent; comment `/plan` to plan again");
    const after = await h.db.pool.query("select action from audit_events where sha = $1 and action = 'apply.started'", [sha]);
    expect(after.rowCount).toBe(1);
    repo.commit({ ".plangate.yml": null }, "main");
  });
});
