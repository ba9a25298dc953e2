import http from "node:http";
import { jest } from "@jest/globals";
import { pino } from "pino";
import { freePort } from "../../src/db/embedded.js";
import { startPlangate } from "../../src/main.js";
import { readSettings } from "../../src/settings/settings.js";
import { closePullRequest, engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

jest.setTimeout(180_000);

let h: Harness;
let prs: PullRequests;

beforeAll(async () => {
  h = await startHarness();
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo, "Codertocat", 900);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

const get = async (path: string) => {
  const res = await fetch(`${h.url}${path}`);
  return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
};

/** The value of one series in Prometheus text, e.g. `plangate_locks` or `plangate_jobs{task="x",state="queued"}`. */
const sample = (text: string, series: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe("health and metrics endpoints", () => {
  test("/healthz answers while the process runs; /readyz is ready with the database migrated", async () => {
    expect(await get("/healthz")).toMatchObject({ status: 200, body: "ok\n" });
    expect(await get("/readyz")).toMatchObject({ status: 200, body: "ready\n" });
  });

  test("an idle connection stays open past Node's 5 s: a balancer in front never sends a delivery on a connection plangate closed", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const healthz = () =>
      new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
        const req = http.get(`${h.url}/healthz`, { agent }, (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
        });
        req.on("error", reject);
      });
    try {
      expect(await healthz()).toEqual({ status: 200, reused: false });
      await new Promise((resolve) => setTimeout(resolve, 6000));
      // Node's default keep-alive (5 s) would have closed the socket by now, and the agent would open another.
      expect(await healthz()).toEqual({ status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  });

  test("/readyz answers 503 naming a pending migration", async () => {
    await h.db.pool.query("delete from plangate_migrations where name = '005_apply_path.sql'");
    try {
      expect(await get("/readyz")).toMatchObject({ status: 503, body: "not ready: migrations pending: 005_apply_path.sql\n" });
    } finally {
      await h.db.pool.query("insert into plangate_migrations (name) values ('005_apply_path.sql')");
    }
    expect((await get("/readyz")).status).toBe(200);
  });

  engineTest("/metrics counts deliveries, locks, the audit chain, GitHub calls and plan durations after a plan", async () => {
    const p = await prs.open({ "m/main.tf": 'resource "terraform_data" "m" {\n  input = "1"\n}\n' }, ["m/main.tf"]);
    const { status, type, body } = await get("/metrics");
    expect(status).toBe(200);
    expect(type).toContain("text/plain");
    expect(sample(body, 'plangate_deliveries_total{event="pull_request",outcome="enqueued:plan"}')).toBe(1);
    expect(sample(body, "plangate_locks")).toBe(1);
    const audited = (await h.db.pool.query("select count(*)::int as n from audit_events")).rows[0].n;
    expect(sample(body, "plangate_audit_chain_length")).toBe(audited);
    expect(sample(body, 'plangate_plan_duration_seconds_count{engine="terraform",outcome="planned"}')).toBe(1);
    expect(sample(body, 'plangate_job_duration_seconds_count{task="plan-project",outcome="ok"}')).toBe(1);
    expect(sample(body, 'plangate_github_requests_total{method="POST",status="201"}')).toBeGreaterThanOrEqual(2);
    const remaining = sample(body, "plangate_github_rate_limit_remaining")!;
    expect(remaining).toBeLessThan(5000);
    expect(remaining).toBeGreaterThanOrEqual(h.fake.rateLimitRemaining);
    await prs.close(p);
    expect(sample((await get("/metrics")).body, "plangate_locks")).toBe(0);
  });
});

describe("a worker-only process (PLANGATE_METRICS_PORT)", () => {
  engineTest("serves /healthz, /readyz and /metrics on its own port, counting the jobs and plans it ran", async () => {
    // The webhook server runs no worker: every job is the worker-only process's.
    const server = await startHarness({ PLANGATE_WORKERS: "0" });
    const port = await freePort();
    const worker = await startPlangate(readSettings({ ...server.env, PLANGATE_WORKERS: "1", PLANGATE_METRICS_PORT: String(port) }), { server: false, worker: true, host: "127.0.0.1", log: pino({ level: "silent" }) });
    try {
      expect(worker.port).toBe(port);
      const at = async (base: string, path: string) => {
        const res = await fetch(`${base}${path}`);
        return { status: res.status, body: await res.text() };
      };
      const own = `http://127.0.0.1:${port}`;
      expect(await at(own, "/healthz")).toMatchObject({ status: 200, body: "ok\n" });
      expect(await at(own, "/readyz")).toMatchObject({ status: 200, body: "ready\n" });
      expect((await at(own, "/api/github/webhooks")).status).toBe(404);
      const repo = new GitRepo(server.fake.gitRoot, "Codertocat", "Hello-World");
      repo.commit({ "README.md": "root" });
      const p = await new PullRequests(server, repo, "Codertocat", 950).open({ "w/main.tf": 'resource "terraform_data" "w" {\n  input = "1"\n}\n' }, ["w/main.tf"]);
      expect(sample((await at(own, "/metrics")).body, 'plangate_plan_duration_seconds_count{engine="terraform",outcome="planned"}')).toBe(1);
      expect(sample((await at(own, "/metrics")).body, 'plangate_job_duration_seconds_count{task="plan-project",outcome="ok"}')).toBe(1);
      // The server process ran none of them.
      expect(sample((await at(server.url, "/metrics")).body, 'plangate_plan_duration_seconds_count{engine="terraform",outcome="planned"}') ?? 0).toBe(0);
      await closePullRequest(server, p.number, p.sha);
      expect(server.fake.unexpected).toEqual([]);
    } finally {
      await worker.stop();
      await server.close();
    }
  });
});
