import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";
import { notifySignature } from "../../src/worker/notify.js";

jest.setTimeout(240_000);

const REPO = "Codertocat/Hello-World";
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const NOTIFY_SECRET = "drift-notify-secret-0123456789";
const notifications: { event: string; signature: string; body: string }[] = [];
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    notifications.push({ event: String(req.headers["x-plangate-event"]), signature: String(req.headers["x-plangate-signature-256"]), body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(204).end();
  });
});

beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  h = await startHarness({ PLANGATE_NOTIFY_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/drift`, PLANGATE_NOTIFY_SECRET: NOTIFY_SECRET });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  prs = new PullRequests(h, repo, "Codertocat", 950);
  h.fake.permissions.set(`${REPO}:alice`, "write");
});
afterAll(async () => {
  await h?.close();
  receiver.close();
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** `plangate drift OWNER/REPO` as an operator runs it, against the app's database. */
async function driftNow(): Promise<string> {
  const { stdout } = await promisify(execFile)("node", ["bin/plangate.js", "drift", REPO], { env: { ...process.env, DATABASE_URL: h.db.url, LOG_LEVEL: "error" } });
  return stdout;
}
/** plangate's own drift issues (a planted one, by a person, is not one). */
const driftIssues = () => h.fake.issues.filter((i) => i.repo === REPO && i.labels.includes("plangate:drift") && i.user.login === h.fake.botLogin);
const driftAudit = async () => (await h.db.pool.query("select action, project, details from audit_events where action like 'drift.%' order by id")).rows;

describe("drift detection", () => {
  engineTest("a project whose infrastructure differs from the default branch gets one plangate:drift issue, closed once an apply makes it clean", async () => {
    const backend = `terraform {\n  backend "pg" {\n    conn_str    = "${h.db.url}?sslmode=disable"\n    schema_name = "drift_infra"\n  }\n}\n`;
    const config = 'version: 1\nprojects:\n  - dir: infra\n    drift: { schedule: "0 6 * * *" }\n';
    // main declares a resource that was never applied: the infrastructure lags the branch.
    repo.commit({ ".plangate.yml": config, "infra/backend.tf": backend, "infra/main.tf": 'resource "terraform_data" "d" {\n  input = "declared"\n}\n' });
    // Planning any pull request reads main's config, which puts the repository on the drift list.
    const docs = await prs.open({ "docs.md": "words" }, ["docs.md"]);
    await prs.close(docs);

    // An issue someone opened with the label and plangate's marker (an issue template can add the label): not plangate's to edit or close.
    const planted = { repo: REPO, number: 9001, title: "plangate: drift in infra (default)", body: "<!-- plangate:drift project=infra workspace=default -->\nplanted", labels: ["plangate:drift"], state: "open" as const, user: { login: "mallory", type: "User" }, performed_via_github_app: null };
    h.fake.issues.push(structuredClone(planted));

    expect(await driftNow()).toContain(`drift check queued for ${REPO}`);
    await waitFor("the drift issue", () => driftIssues().length === 1, 120_000);
    await queueDrained(h.db);
    const [issue] = driftIssues();
    expect(issue).toMatchObject({ title: "plangate: drift in infra (default)", state: "open" });
    expect(issue!.body).toContain("### 🌊 Drift in `infra` (workspace `default`)");
    expect(issue!.body).toContain('+ input = "declared"');
    expect(await driftAudit()).toEqual([expect.objectContaining({ action: "drift.detected", project: "infra", details: expect.objectContaining({ issue: issue!.number, add: 1 }) })]);

    const noticed = await waitFor("the drift notification", () => notifications.find((n) => n.event === "drift.detected"), 60_000);
    expect(noticed.signature).toBe(notifySignature(NOTIFY_SECRET, noticed.body));
    expect(JSON.parse(noticed.body)).toMatchObject({ event: "drift.detected", repo: REPO, project: "infra", workspace: "default", branch: "main", issue: issue!.number, counts: { add: 1 } });
    expect(JSON.parse(noticed.body).text).toContain(`🌊 plangate found drift in ${REPO}: infra (default) on main`);

    // Checked again while still drifted: the same issue is updated, nothing new is audited.
    await driftNow();
    await waitFor("the second check", async () => (await h.db.pool.query("select count(*)::int as n from graphile_worker.jobs where task_identifier like 'drift-%'")).rows[0].n === 0, 120_000);
    expect(driftIssues()).toHaveLength(1);
    expect((await driftAudit()).map((a) => a.action)).toEqual(["drift.detected"]);
    expect(notifications.filter((n) => n.event === "drift.detected")).toHaveLength(1);

    // A pull request applies the branch's change; the next check is clean and closes the issue.
    const fix = await prs.open({ "infra/main.tf": 'resource "terraform_data" "d" {\n  input = "declared"\n}\n# applied through a pull request\n' }, ["infra/main.tf"]);
    await prs.review(fix, "alice");
    await prs.merge(fix);
    expect(prs.check("plangate/apply", repo.head())?.conclusion).toBe("success");
    await driftNow();
    await waitFor("the issue to close", () => driftIssues()[0]?.state === "closed", 120_000);
    await queueDrained(h.db);
    expect(driftIssues()[0]!.body).toContain("### ✅ No drift in `infra`");
    expect((await driftAudit()).map((a) => a.action)).toEqual(["drift.detected", "drift.resolved"]);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toContain('plangate_drift_projects{status="clean"} 1');
    expect(h.fake.issues.find((i) => i.number === 9001)).toEqual(planted);
  });

  engineTest("a cdktf program is drift-checked too: every stack synthesized and planned, its addresses under their stack", async () => {
    const dir = "test/fixtures/cdktf-app";
    const program = Object.fromEntries(readdirSync(dir).map((f) => [`cdk/${f}`, readFileSync(path.join(dir, f), "utf8")]));
    const config = 'version: 1\nprojects:\n  - dir: infra\n    drift: { schedule: "0 6 * * *" }\n  - name: cdk\n    dir: cdk\n    engine: cdktf\n    drift: { schedule: "0 7 * * *" }\n';
    repo.commit({ ".plangate.yml": config, ...program });
    await driftNow();
    await waitFor("the cdktf drift issue", () => driftIssues().some((i) => i.title === "plangate: drift in cdk (default)"), 240_000);
    await queueDrained(h.db);
    const issue = driftIssues().find((i) => i.title === "plangate: drift in cdk (default)")!;
    expect(issue.body).toMatch(/`base\/terraform_data\.[\w-]+`/);
    expect(issue.body).toMatch(/`web\/terraform_data\.[\w-]+`/);
    expect(issue.body).toContain('+ input = "from-base"');
    expect((await driftAudit()).filter((a) => a.action === "drift.detected").map((a) => a.project)).toEqual(["infra", "cdk"]);
  });
});

