import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(240_000);

const REPO = "Codertocat/Hello-World";
let h: Harness;
let repo: GitRepo;
const scratch = mkdtempSync(path.join(os.tmpdir(), "plangate-shutdown-"));
const started: ChildProcess[] = [];

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "0" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
});
afterAll(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await h?.close();
  rmSync(scratch, { recursive: true, force: true });
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** A `plangate worker` process with a data dir and a temp dir of its own (its egress sockets live there). */
function startWorker(name: string): { child: ChildProcess; tmp: string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  chmodSync(scratch, 0o755);
  const data = mkdtempSync(path.join(scratch, `${name}-data-`));
  // Short: the egress filter's sockets go under it, and a Unix socket's path has at most 107 bytes.
  const tmpDir = mkdtempSync(path.join(scratch, `${name[0]}-`));
  chmodSync(data, 0o755);
  chmodSync(tmpDir, 0o755);
  const child = spawn("node", ["bin/plangate.js", "worker"], {
    env: { ...process.env, ...h.env, PLANGATE_WORKERS: "1", PLANGATE_DATA_DIR: data, TMPDIR: tmpDir, LOG_LEVEL: "error" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  started.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return { child, tmp: tmpDir, exited };
}

const planCheck = (sha: string) => h.fake.checkRuns.filter((c) => c.name === "plangate/plan" && c.head_sha === sha);

describe("a worker stopped as a deploy stops it (SIGTERM)", () => {
  engineTest("finishes the plan it is running, exits 0 with its sandbox's sockets removed, and the plan is neither cut short nor run again", async () => {
    const number = 51;
    const sha = repo.commit({ "long/main.tf": 'resource "terraform_data" "r" {\n  count = 6000\n  input = "long-${count.index}"\n}\n' }, "pr-51");
    h.fake.pullFiles.set(`${REPO}#${number}`, ["long/main.tf"]);
    h.fake.pulls.set(`${REPO}#${number}`, { headSha: sha });
    const payload = examplePayload("pull_request", "opened");
    Object.assign(payload.pull_request, { number, draft: false });
    payload.pull_request.head.sha = sha;
    const first = startWorker("first");
    expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);

    // The plan is under way (6,000 resources: several seconds of terraform) when the deploy stops the worker.
    const run = await waitFor("the long plan running", async () => {
      const { rows } = await h.db.pool.query<{ id: number; status: string }>("select id, status from runs where kind = 'plan' and sha = $1 and status = 'running'", [sha]);
      return rows[0];
    }, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    first.child.kill("SIGTERM");
    const exit = await first.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    const { rows: finished } = await h.db.pool.query<{ status: string }>("select status from runs where id = $1", [run.id]);
    expect(finished[0]!.status).toBe("succeeded");
    expect(readdirSync(first.tmp).filter((name) => name.startsWith("plangate-egress-"))).toEqual([]);

    // The next worker reports it; nothing is planned twice.
    const second = startWorker("second");
    await waitFor("plangate/plan completed", () => planCheck(sha).find((c) => c.status === "completed"), 120_000);
    await queueDrained(h.db);
    expect(planCheck(sha).find((c) => c.status === "completed")?.conclusion).toBe("success");
    const { rows: audited } = await h.db.pool.query<{ action: string }>("select action from audit_events where run_id = $1 and action like 'plan.%' order by id", [run.id]);
    expect(audited.map((r) => r.action)).toEqual(["plan.started", "plan.succeeded"]);
    const body = h.fake.commentsOn(REPO, number).find((c) => c.body.includes("<!-- plangate:plan part=1 -->"))!.body;
    expect(body).toContain("| `long` | `default` | ✅ planned | 6000 | 0 | 0 | 0 |");
    second.child.kill("SIGTERM");
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });
});
