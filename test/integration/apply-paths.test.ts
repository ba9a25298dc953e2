import http from "node:http";
import type { AddressInfo } from "node:net";
import { jest } from "@jest/globals";
import { engineTest, queueDrained, shortBackoff, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { notifySignature } from "../../src/worker/notify.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";
import { startStateBackend, type StateBackend } from "../support/state-backend.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(300_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
const REPO = `${OWNER}/${NAME}`;
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

let backend: StateBackend;
/** The queue's retries (a merge that cannot be fetched, a refused notification) come seconds apart, not e^attempt. */
let backoffShortened: () => Promise<void>;

/** A receiver of plangate's notifications that this test owns: it refuses the first `refuse` deliveries. */
const NOTIFY_SECRET = "test-notify-secret-0123456789";
const notifications: { status: number; event: string; signature: string; body: string }[] = [];
let refuse = 0;
const notifyServer = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const status = refuse > 0 ? (refuse--, 500) : 200;
    notifications.push({ status, event: String(req.headers["x-plangate-event"]), signature: String(req.headers["x-plangate-signature-256"]), body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(status).end();
  });
});

beforeAll(async () => {
  backend = await startStateBackend();
  await new Promise<void>((r) => notifyServer.listen(0, "127.0.0.1", r));
  const statePort = backend.port;
  h = await startHarness({
    PLANGATE_SANDBOX_EGRESS_ALLOW: `127.0.0.1:${statePort}`,
    PLANGATE_NOTIFY_URL: `http://127.0.0.1:${(notifyServer.address() as AddressInfo).port}/hook`,
    PLANGATE_NOTIFY_SECRET: NOTIFY_SECRET,
  });
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo, "Codertocat", 700);
  for (const user of ["alice", "bob"]) h.fake.permissions.set(`${REPO}:${user}`, "write");
  repo.commit({ "README.md": "root" });
  backoffShortened = shortBackoff(h.db);
});
afterAll(async () => {
  await backoffShortened?.();
  await h?.close();
  backend?.close();
  notifyServer.close();
});
const stateUrl = (name: string) => backend.url(name);
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** terraform_data resources in `dir`, local state (each checkout starts without one: every apply creates). */
const tf = (dir: string, resources: Record<string, string>, extra = "") => ({
  [`${dir}/main.tf`]: Object.entries(resources).map(([n, input]) => `resource "terraform_data" "${n}" {\n  input = ${input}\n}\n`).join("\n") + extra,
});
const applyCheck = (sha: string) => prs.check("plangate/apply", sha);
const locks = async () => (await h.db.pool.query("select project, pull_number from locks order by project")).rows;
const actions = async (p: Pr, prefix = "apply.") => (await prs.audit(p)).filter((a) => a.action.startsWith(prefix));

describe("every merge gets an answer", () => {
  engineTest("a merge after /unlock: not applied, told why, plangate/apply failed, audited, no lock left", async () => {
    const p = await prs.open(tf("unl", { a: '"1"' }), ["unl/main.tf"]);
    await prs.review(p, "alice");
    await prs.comment(p, "/unlock", "alice");
    const mergeSha = await prs.merge(p);
    expect(applyCheck(mergeSha)).toMatchObject({ status: "completed", conclusion: "failure", output: { title: "Not applied" } });
    expect(prs.comments(p).at(-1)).toContain("Its plans were discarded (by `/unlock`) before the merge");
    expect((await actions(p)).map((a) => [a.action, a.details.code])).toEqual([["apply.requested", undefined], ["apply.denied", "discarded"]]);
    expect(await locks()).toEqual([]);
  });

  engineTest("a merge after /apply: nothing more to apply, neutral plangate/apply, one apply in the audit", async () => {
    const config = "version: 1\nprojects:\n  - dir: both\n    apply: both\n";
    repo.commit({ ".plangate.yml": config }, "main");
    const p = await prs.open({ ".plangate.yml": config, ...tf("both", { b: '"1"' }) }, ["both/main.tf"]);
    await prs.review(p, "alice");
    await prs.comment(p, "/apply", "alice");
    expect(prs.check("plangate/apply", p.sha)?.conclusion).toBe("success");
    const mergeSha = await prs.merge(p);
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "neutral", output: { title: "Nothing to apply" } });
    expect(prs.comments(p).at(-1)).toContain("Every reviewed plan of this pull request was already applied with `/apply` before the merge.");
    expect((await actions(p)).filter((a) => a.action === "apply.started")).toHaveLength(1);
    expect((await actions(p)).at(-1)).toMatchObject({ action: "apply.denied", details: { code: "already-applied", neutral: true } });
    expect(await locks()).toEqual([]);
    repo.commit({ ".plangate.yml": null }, "main");
  });

  engineTest("a merge whose merge-commit plan fails: its own reason, nothing applied, locks released", async () => {
    const p = await prs.open(tf("mfail", { m: '"1"' }), ["mfail/main.tf"]);
    await prs.review(p, "alice");
    // main gains a file that breaks the project's configuration at the merge commit
    repo.commit({ "mfail/broken.tf": 'resource "terraform_data" "broken" {\n  input = var.missing\n}\n' }, "main");
    const mergeSha = await prs.merge(p);
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "failure", output: { title: "Not applied" } });
    const said = prs.comments(p).at(-1)!;
    expect(said).toContain("plangate plans the merge commit afresh before applying, and that plan failed, so nothing was applied:");
    expect(said).toContain("mfail:");
    expect((await actions(p)).map((a) => a.action)).toEqual(["apply.requested", "apply.denied"]);
    expect((await actions(p)).at(-1)!.details.code).toBe("fresh-plan-failed");
    expect(await locks()).toEqual([]);
  });

  engineTest("a merge plangate cannot even fetch (a system error on every attempt) still gets its answer, and its locks go", async () => {
    const p = await prs.open(tf("broken", { b: '"1"' }), ["broken/main.tf"]);
    await prs.review(p, "alice");
    const missing = "f".repeat(40); // a merge commit the repository does not have
    const { closePullRequest } = await import("../support/app-harness.js");
    await closePullRequest(h, p.number, p.sha, { mergeSha: missing, mergedBy: "alice" });
    await waitFor("the answer", () => applyCheck(missing)?.status === "completed", 120_000);
    await queueDrained(h.db);
    expect(applyCheck(missing)).toMatchObject({ conclusion: "failure", output: { title: "Not applied" } });
    expect(prs.comments(p).at(-1)).toContain("plangate itself failed (after retrying), so nothing was applied:");
    expect((await actions(p)).at(-1)).toMatchObject({ action: "apply.denied", details: { code: "system-error" } });
    expect(await locks()).toEqual([]);
  });

  engineTest("a PR plangate never planned gets a neutral plangate/apply and no comment", async () => {
    const p: Pr = { number: 790, branch: "docs-790", sha: repo.commit({ "docs/readme.md": "words" }, "docs-790") };
    h.fake.pulls.set(`${REPO}#${p.number}`, { headSha: p.sha });
    const mergeSha = await prs.merge(p);
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "neutral", output: { title: "Nothing to apply" } });
    expect(prs.comments(p)).toEqual([]);
  });
});

describe("apply reporting", () => {
  engineTest("GitHub answering 502 to the report: the check run still ends completed, and nothing is applied twice", async () => {
    const p = await prs.open(tf("flaky", { f: '"1"' }), ["flaky/main.tf"]);
    await prs.review(p, "alice");
    // Every attempt Octokit makes (its own retries included) fails for a while: only the report job's retry gets through.
    h.fake.fail("PATCH", /\/check-runs\/\d+$/, 502, 6);
    const mergeSha = await prs.merge(p);
    await waitFor("plangate/apply to complete", () => applyCheck(mergeSha)?.status === "completed", 120_000);
    await queueDrained(h.db);
    expect(applyCheck(mergeSha)).toMatchObject({ status: "completed", conclusion: "success" });
    expect(h.fake.requestsTo("PATCH", /\/check-runs\/\d+$/).length).toBeGreaterThan(6);
    expect((await actions(p)).filter((a) => a.action === "apply.started")).toHaveLength(1);
    expect(prs.comments(p).filter((c) => c.includes("plangate applied"))).toHaveLength(1);
    expect(await locks()).toEqual([]);
  });
});

describe("notifications", () => {
  engineTest("apply outcomes are announced to PLANGATE_NOTIFY_URL, signed, and retried until the receiver takes them", async () => {
    refuse = 1;
    const p = await prs.open(tf("announced", { n: '"1"' }), ["announced/main.tf"]);
    await prs.review(p, "alice");
    const mergeSha = await prs.merge(p);
    const mine = (event: string) => notifications.filter((n) => n.event === event && JSON.parse(n.body).pullNumber === p.number);
    await waitFor("the notification to be taken", () => mine("apply.succeeded").some((n) => n.status === 200), 60_000);
    const [refused, taken] = mine("apply.succeeded");
    expect(refused).toMatchObject({ status: 500 });
    expect(taken).toMatchObject({ status: 200 });
    const { runUrl: _first, text: _firstText, ...again } = JSON.parse(refused!.body);
    const { runUrl: _second, text: _secondText, ...retried } = JSON.parse(taken!.body);
    expect(retried).toEqual(again); // the same announcement (only the run link's expiry is fresh)
    expect(taken!.signature).toBe(notifySignature(NOTIFY_SECRET, taken!.body));
    const sent = JSON.parse(taken!.body);
    expect(sent).toMatchObject({ event: "apply.succeeded", repo: REPO, sha: mergeSha, mode: "merge", projects: [{ project: "announced", workspace: "default", status: "succeeded" }] });
    expect(sent.text).toContain(`✅ plangate applied ${REPO}#${p.number} at ${mergeSha.slice(0, 7)} (merge): announced succeeded`);

    const unapproved = await prs.open(tf("announced2", { n: '"2"' }), ["announced2/main.tf"]);
    await prs.merge(unapproved);
    const denied = () => notifications.find((n) => n.event === "apply.denied" && JSON.parse(n.body).pullNumber === unapproved.number);
    await waitFor("the denial's notification", denied, 60_000);
    expect(JSON.parse(denied()!.body)).toMatchObject({ reason: "not-approved", mode: "merge" });
    expect(denied()!.signature).toBe(notifySignature(NOTIFY_SECRET, denied()!.body));
  });
});

describe("order and serialization", () => {
  engineTest("depends_on: the first project fails, the dependent one is skipped, reported and audited as skipped", async () => {
    const config = "version: 1\nprojects:\n  - dir: first\n  - dir: second\n    depends_on: [first]\n";
    repo.commit({ ".plangate.yml": config }, "main");
    const failing = '\nresource "terraform_data" "boom" {\n  provisioner "local-exec" {\n    command = "exit 1"\n  }\n}\n';
    const p = await prs.open({ ".plangate.yml": config, ...tf("first", { a: '"1"' }, failing), ...tf("second", { b: '"2"' }) }, ["first/main.tf", "second/main.tf"]);
    await prs.review(p, "alice");
    const mergeSha = await prs.merge(p);
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "failure", output: { title: "Apply failed" } });
    const said = prs.comments(p).at(-1)!;
    expect(said).toContain("| `first` | `default` | ❌ failed |");
    expect(said).toContain("| `second` | `default` | ⏭️ not applied (an earlier project failed) |");
    expect(said.indexOf("`first`")).toBeLessThan(said.indexOf("`second`"));
    const audited = (await actions(p)).map((a) => [a.action, a.details.code ?? ""]);
    expect(audited).toEqual([["apply.requested", ""], ["apply.started", ""], ["apply.failed", ""], ["apply.denied", "skipped"]]);
    expect(await locks()).toEqual([]);
    repo.commit({ ".plangate.yml": null }, "main");
  });

  engineTest("two PRs merged together on one project: their applies never overlap", async () => {
    // Shared state that terraform does not lock, so B's merge-commit plan sees A's apply only if plangate waits for it.
    const backend = `terraform {\n  backend "http" {\n    address = "${stateUrl("shared")}"\n  }\n}\n`;
    // The PRs set variables only: B's merge commit then has the configuration B was approved on (its
    // fingerprint holds the configuration, so A's code joining it would refuse B's apply).
    const items = ["a", "b"].map((tag) => `variable "items_${tag}" {\n  type    = list(string)\n  default = []\n}\n`).join("");
    const slowItems = `${items}resource "terraform_data" "item" {\n  for_each = toset(concat(var.items_a, var.items_b))\n  input    = each.key\n  provisioner "local-exec" {\n    command = "sleep 3"\n  }\n}\n`;
    repo.commit({ "shared/backend.tf": backend, "shared/items.tf": slowItems }, "main");
    const slow = (tag: string) => ({ [`shared/${tag}.auto.tfvars`]: `items_${tag} = ["${tag}"]\n` });
    const a = await prs.open(slow("a"), ["shared/a.auto.tfvars"]);
    // An operator releases A's lock (the dashboard's lock release) so that B can plan the same project.
    await h.db.pool.query("delete from locks where pull_number = $1", [a.number]);
    const b = await prs.open(slow("b"), ["shared/b.auto.tfvars"]);
    expect(prs.check("plangate/plan", b.sha)?.conclusion).toBe("success");
    await prs.review(a, "alice");
    await prs.review(b, "alice");
    const closed = (p: Pr, mergeSha: string) => {
      const payload = examplePayload("pull_request", "closed");
      Object.assign(payload.pull_request, { number: p.number, merged: true, merge_commit_sha: mergeSha, merged_by: { login: "alice" } });
      payload.pull_request.head.sha = p.sha;
      return deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
    };
    const mergeA = repo.merge(a.branch);
    const mergeB = repo.merge(b.branch);
    expect((await closed(a, mergeA)).status).toBe(200);
    const applying = async (sha: string) => (await h.db.pool.query("select 1 from runs where kind = 'apply' and sha = $1 and status = 'running'", [sha])).rowCount === 1;
    await waitFor("A's apply to be running", () => applying(mergeA), 120_000);
    expect((await closed(b, mergeB)).status).toBe(200);
    await waitFor("both applies", () => applyCheck(mergeA)?.status === "completed" && applyCheck(mergeB)?.status === "completed", 180_000);
    await queueDrained(h.db);
    expect(applyCheck(mergeA)?.conclusion).toBe("success");
    expect(applyCheck(mergeB)?.conclusion).toBe("success");
    const { rows } = await h.db.pool.query("select sha, started_at, finished_at from runs where kind = 'apply' and project = 'shared' and started_at is not null order by started_at");
    expect(rows.map((r) => r.sha)).toEqual([mergeA, mergeB]);
    expect(rows[0].finished_at.getTime()).toBeLessThanOrEqual(rows[1].started_at.getTime());
  });
});

describe("merge queues", () => {
  engineTest("a queue commit with the approved change passes both checks, and the merge applies its plan without planning again", async () => {
    const p = await prs.open(tf("queued", { q: '"1"' }), ["queued/main.tf"]);
    await prs.review(p, "alice");
    const queueSha = await prs.queue(p);
    expect(prs.check("plangate/plan", queueSha)).toMatchObject({ conclusion: "success", output: { title: "Merge queue commit verified: the approved change" } });
    expect(prs.check("plangate/approval", queueSha)?.conclusion).toBe("success");
    // GitHub merges the queue commit itself.
    repo.fastForward(queueSha);
    const { closePullRequest } = await import("../support/app-harness.js");
    await closePullRequest(h, p.number, p.sha, { mergeSha: queueSha, mergedBy: "alice" });
    expect(applyCheck(queueSha)).toMatchObject({ conclusion: "success" });
    expect(prs.comments(p).at(-1)).toContain("| `queued` | `default` | ✅ applied |");
    const started = (await actions(p)).find((a) => a.action === "apply.started")!;
    expect(started.details.verified).toBe(true);
    // Planned twice in all (the PR head, the queue commit): the merge did not plan a third time.
    expect((await actions(p, "plan.succeeded")).length).toBe(2);
  });

  engineTest("a queue commit whose base changed the plan fails both checks and the PR is told why", async () => {
    repo.commit({ "qbase/locals.tf": 'locals {\n  v = "a"\n}\n' }, "main");
    const p = await prs.open(tf("qbase", { q: "local.v" }), ["qbase/main.tf"]);
    await prs.review(p, "alice");
    repo.commit({ "qbase/locals.tf": 'locals {\n  v = "b"\n}\n' }, "main");
    const queueSha = await prs.queue(p);
    expect(prs.check("plangate/plan", queueSha)).toMatchObject({ conclusion: "failure", output: { title: "Merge queue commit refused" } });
    expect(prs.check("plangate/approval", queueSha)?.conclusion).toBe("failure");
    const said = prs.comments(p).at(-1)!;
    expect(said).toContain("The merge queue commit's plan differs from the plan that was approved.");
    expect(said).toContain("GitHub takes this pull request out of the merge queue");
    expect((await prs.audit(p)).at(-1)).toMatchObject({ action: "approval.changed", details: { mergeQueue: true, met: false, code: "fingerprint-mismatch" } });
    await prs.close(p);
  });
});
