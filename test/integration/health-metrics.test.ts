import { jest } from "@jest/globals";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
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
