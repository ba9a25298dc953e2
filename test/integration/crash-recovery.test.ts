import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";
import { asShown } from "../support/markdown.js";
import { terraformPid } from "../support/processes.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(300_000);

const REPO = "Codertocat/Hello-World";
let h: Harness;
let repo: GitRepo;
/** PRs are opened without waiting: their plans run only once a test starts a worker. */
let prs: PullRequests;
const workers: ChildProcess[] = [];

/**
 * Where an apply's provisioner waits (see `waiter`): a connection to the
 * test, answered only once the test lets go. A connection arriving is the
 * moment terraform is inside the apply.
 */
class Gate {
  private held: net.Socket[] = [];
  private open = false;
  private wake?: () => void;
  private constructor(private readonly server: net.Server) {}

  static async start(): Promise<Gate> {
    let gate: Gate | undefined;
    const server = net.createServer((socket) => gate!.arrived(socket));
    gate = new Gate(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return gate;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Resolves once a provisioner waits here. */
  async waited(): Promise<void> {
    while (!this.held.length) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** Answers the waiting provisioners (if still there) and every later one at once, until `hold()`. */
  release(): void {
    this.open = true;
    for (const socket of this.held.splice(0)) socket.end("go\n");
  }

  hold(): void {
    this.open = false;
  }

  close(): void {
    for (const socket of this.held.splice(0)) socket.destroy();
    this.server.close();
  }

  private arrived(socket: net.Socket): void {
    socket.on("error", () => undefined);
    if (this.open) return void socket.end("go\n");
    this.held.push(socket);
    socket.on("close", () => (this.held = this.held.filter((s) => s !== socket)));
    this.wake?.();
  }
}
let gate: Gate;

beforeAll(async () => {
  gate = await Gate.start();
  // The app here only receives webhooks: plans and applies run in worker processes this test kills.
  // The gate's loopback port is opened to their sandboxes.
  h = await startHarness({ PLANGATE_WORKERS: "0", PLANGATE_WORKER_STALE_AFTER: "2s", PLANGATE_SANDBOX_EGRESS_ALLOW: `127.0.0.1:${gate.port}` });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo);
  h.fake.permissions.set(`${REPO}:alice`, "write");
});
afterAll(async () => {
  await stopWorkers();
  gate?.close();
  await h?.close();
});
afterEach(async () => {
  // Each test owns its worker processes: none of them lingers to take the next test's jobs.
  await stopWorkers();
  gate.hold();
  expect(h.fake.unexpected).toEqual([]);
});

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

/** Kills a worker process and everything it started (its process group); resolves once it has exited. */
function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // already gone
  }
  return exited;
}

const stopWorkers = () => Promise.all(workers.splice(0).map(kill));

const runStatus = async (sql: string, params: unknown[]) => (await h.db.pool.query(sql, params)).rows[0]?.status;
const comments = (n: number) => h.fake.commentsOn(REPO, n).map((c) => asShown(c.body));


describe("a worker process killed", () => {
  engineTest("mid-plan: the job is retried by a new worker and completes", async () => {
    const slow = 'resource "terraform_data" "many" {\n  count = 15000\n  input = "${count.index}"\n}\n';
    const { number, sha } = await prs.openNoWait({ "big/main.tf": slow }, ["big/main.tf"]);
    const first = startWorker();
    await waitFor("the plan to be running", async () => (await runStatus("select status from runs where sha = $1", [sha])) === "running", 120_000);
    await waitFor("terraform to be planning", () => terraformPid("big", "plan", first.pid!), 120_000);
    await kill(first);
    expect(await runStatus("select status from runs where sha = $1", [sha])).toBe("running");

    startWorker();
    await waitFor("the retried plan", async () => (await runStatus("select status from runs where sha = $1", [sha])) === "succeeded", 240_000);
    await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 60_000);
    await queueDrained(h.db);
    expect(comments(number).join("\n")).toContain("| `big` | `default` | ✅ planned | 15000 | 0 | 0 | 0 |");
    const { rows } = await h.db.pool.query("select action from audit_events where sha = $1 and action like 'plan.%' order by id", [sha]);
    expect(rows.map((r) => r.action)).toEqual(["plan.started", "plan.succeeded"]);
  });

  /**
   * A resource whose apply waits at the test's gate: the first attempt is
   * killed while it waits there; once the gate is open an attempt applies at
   * once. The provisioner is not part of the plan's fingerprint, so both
   * attempts plan the same change.
   */
  const waiter = () =>
    `resource "terraform_data" "slow" {\n  input = "x"\n  provisioner "local-exec" {\n    interpreter = ["/bin/bash", "-c"]\n    command     = "exec 3<>/dev/tcp/127.0.0.1/${gate.port} && grep -q -m1 go <&3"\n  }\n}\n`;
  const applyActions = async (sha: string) => (await h.db.pool.query("select action from audit_events where sha = $1 and action like 'apply.%' order by id", [sha])).rows.map((r) => r.action);

  engineTest("mid-/apply: the apply is reported interrupted, and the retried job plans afresh and applies the approved change once", async () => {
    const config = "version: 1\nprojects:\n  - dir: slow\n    apply: command\n    approvals: { required: 0 }\n";
    repo.commit({ ".plangate.yml": config }, "main"); // apply mode and approvals are the base branch's rules
    const { number, sha } = await prs.openNoWait({ ".plangate.yml": config, "slow/main.tf": waiter() }, ["slow/main.tf"]);
    const first = startWorker();
    await waitFor("the plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 120_000);

    const payload = examplePayload("issue_comment", "created");
    payload.issue = { ...payload.issue, number, pull_request: { url: "x" } };
    payload.comment = { ...payload.comment, id: 777, body: "/apply", user: { ...payload.comment.user, login: "alice", type: "User" } };
    payload.sender = { ...payload.sender, login: "alice", type: "User" };
    expect((await deliver(h.url, "issue_comment", payload, WEBHOOK_SECRET)).status).toBe(200);
    await waitFor("the apply to be running", async () => (await runStatus("select status from runs where kind = 'apply' and sha = $1", [sha])) === "running", 120_000);
    await gate.waited(); // terraform is inside the apply
    await kill(first);

    gate.release();
    startWorker();
    await waitFor("the fresh apply", () => comments(number).some((c) => c.includes("✅ plangate applied")), 120_000);
    await queueDrained(h.db);
    const said = comments(number);
    expect(said.find((c) => c.includes("was interrupted"))).toContain("the next `/apply` plans afresh and applies only if that plan is the change that was approved");
    expect(said.at(-1)).toContain("| `slow` | `default` | ✅ applied |");
    expect(h.fake.checkRuns.filter((c) => c.head_sha === sha && c.name === "plangate/apply").at(-1)).toMatchObject({ conclusion: "success" });
    expect(await applyActions(sha)).toEqual(["apply.requested", "apply.started", "apply.interrupted", "apply.started", "apply.succeeded"]);
    repo.commit({ ".plangate.yml": null }, "main");
  });

  engineTest("mid-apply on merge: reported interrupted, planned afresh at the merge commit, applied once, locks released", async () => {
    const config = "version: 1\nprojects:\n  - dir: merged\n    approvals: { required: 0 }\n";
    repo.commit({ ".plangate.yml": config }, "main");
    const { number, sha, branch } = await prs.openNoWait({ ".plangate.yml": config, "merged/main.tf": waiter() }, ["merged/main.tf"]);
    const first = startWorker();
    await waitFor("the plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 120_000);
    const mergeSha = repo.merge(branch);
    const payload = examplePayload("pull_request", "closed");
    Object.assign(payload.pull_request, { number, merged: true, merge_commit_sha: mergeSha, merged_by: { login: "alice" } });
    payload.pull_request.head.sha = sha;
    expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);
    await waitFor("the apply to be running", async () => (await runStatus("select status from runs where kind = 'apply' and sha = $1", [mergeSha])) === "running", 120_000);
    await gate.waited();
    await kill(first);

    gate.release();
    startWorker();
    await waitFor("the fresh apply", () => comments(number).some((c) => c.includes("✅ plangate applied")), 120_000);
    await queueDrained(h.db);
    expect(comments(number).find((c) => c.includes("was interrupted"))).toContain("it plans the merge commit afresh now and applies only if that plan is the change that was approved");
    expect(h.fake.checkRuns.filter((c) => c.head_sha === mergeSha && c.name === "plangate/apply").at(-1)).toMatchObject({ conclusion: "success" });
    expect(await applyActions(mergeSha)).toEqual(["apply.requested", "apply.started", "apply.interrupted", "apply.started", "apply.succeeded"]);
    expect((await h.db.pool.query("select 1 from locks where pull_number = $1", [number])).rowCount).toBe(0);
    repo.commit({ ".plangate.yml": null }, "main");
  });
});
