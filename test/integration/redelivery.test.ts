import { jest } from "@jest/globals";
import pg from "pg";
import { createPool } from "../../src/db/pool.js";
import { whileSweepLocked } from "../../src/db/redeliveries.js";
import { REDELIVERIES_PER_DELIVERY } from "../../src/redelivery/choose-redeliveries.js";
import { engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import type { HookAttempt } from "../support/fake-hook.js";
import { GitRepo } from "../support/git-repo.js";
import { OwnPostgres } from "../support/own-postgres.js";
import { examplePayload } from "../support/webhooks.js";

jest.setTimeout(240_000);

/**
 * No delivery lost to an outage (DESIGN.md section 3, "Nothing lost"): GitHub
 * does not retry a delivery that failed. Deliveries sent while plangate's
 * database is down get 503 and stay failed in the App's delivery log; once
 * the database is back, the redelivery sweep asks GitHub for each of them
 * once, GitHub sends each again (same guid, same signed body), and every pull
 * request is planned exactly once.
 */
const REPO = "Codertocat/Hello-World";
let pgServer: OwnPostgres;
let h: Harness;
let repo: GitRepo;

beforeAll(async () => {
  // A PostgreSQL server of the test's own, which it stops and starts (the machine's server stays up).
  pgServer = new OwnPostgres();
  await pgServer.init();
  const admin = new pg.Client({ connectionString: pgServer.url });
  await admin.connect();
  await admin.query("create database plangate");
  await admin.end();
  const url = pgServer.urlOf("plangate");
  const pool = createPool(url, 2);
  // Only the start sweep and the test's own: none on a timer while the test runs.
  h = await startHarness({ PLANGATE_REDELIVER_EVERY: "24h" }, { database: { url, pool, drop: () => pool.end() } });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
});
afterAll(async () => {
  await h?.close();
  pgServer?.destroy();
});

interface Sent {
  n: number;
  sha: string;
  first: HookAttempt;
}

/** Opens PR `n` with one project of its own: GitHub sends pull_request.opened through the App's webhook. */
async function openPr(n: number): Promise<Sent> {
  const branch = `pr-${n}`;
  const sha = repo.commit({ [`p${n}/main.tf`]: `resource "terraform_data" "r" {\n  input = "${n}"\n}\n` }, branch, "change", undefined, { from: "main" });
  h.fake.pullFiles.set(`${REPO}#${n}`, [`p${n}/main.tf`]);
  h.fake.pulls.set(`${REPO}#${n}`, { headSha: sha, headRef: branch, baseSha: repo.sha("main") });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number: n, draft: false });
  payload.pull_request.head.sha = sha;
  payload.pull_request.head.ref = branch;
  return { n, sha, first: await h.fake.hook.send("pull_request", payload) };
}

const planCheck = (s: Sent) => h.fake.checkRuns.find((c) => c.head_sha === s.sha && c.name === "plangate/plan" && c.status === "completed");

const metric = async (series: string) => {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe("the redelivery sweep", () => {
  engineTest("deliveries refused while the database was down are asked for again once, and every PR is planned exactly once", async () => {
    const sweeps = h.app.redeliveries!;
    const asks = () => h.fake.requestsTo("POST", /^\/app\/hook\/deliveries\/\d+\/attempts$/);

    // Delivered while all is well: recorded and planned; the sweep never asks for it.
    const before = await openPr(1);
    expect(before.first.status_code).toBe(200);
    await waitFor("the first plan", () => planCheck(before));
    // Its report's last writes and jobs are done before the database goes: the outage is for new deliveries only.
    await queueDrained(h.db);

    pgServer.stop();
    const during = [await openPr(2), await openPr(3), await openPr(4)];
    // plangate refused them (503: not recorded), and GitHub will not send them again by itself.
    expect(during.map((s) => s.first.status_code)).toEqual([503, 503, 503]);
    // A sweep while the database is down asks for nothing: it cannot tell what plangate has.
    expect(await sweeps.sweep()).toEqual({ outcome: "failed", asked: [], refused: [] });
    expect(asks()).toEqual([]);
    pgServer.start();
    // Meanwhile the App's log filled up (events plangate ignores): the failed deliveries are past its first page.
    for (let i = 0; i < 100; i++) expect((await h.fake.hook.send("issues", examplePayload("issues", "opened"))).status_code).toBe(200);

    // The next sweep asks GitHub for each failed delivery, oldest first, by its attempt's id.
    expect(await sweeps.sweep()).toEqual({ outcome: "swept", asked: during.map((s) => s.first.id), refused: [] });
    expect(h.fake.requestsTo("GET", /^\/app\/hook\/deliveries\?.*\bcursor=v1_\d+/).length).toBeGreaterThan(0);
    expect(h.fake.hook.redeliveryRequests).toEqual(during.map((s) => s.first.id));
    await h.fake.hook.idle();
    // GitHub sent each again: the same guid, a new attempt, and this time plangate took it.
    const redelivered = h.fake.hook.attempts.filter((a) => a.redelivery).map((a) => [a.guid, a.status_code]);
    expect(redelivered.sort()).toEqual(during.map((s) => [s.first.guid, 200]).sort());

    const sent = [before, ...during];
    await waitFor("every PR planned", () => sent.every(planCheck), 150_000);
    await queueDrained(h.db);

    // A second sweep finds nothing left to ask for.
    expect(await sweeps.sweep()).toEqual({ outcome: "swept", asked: [], refused: [] });
    // An operator redelivers one by hand as well (GitHub's "Redeliver" button): the guid is known, nothing is planned again.
    expect(h.fake.hook.redeliver(during[0]!.first.id)).toBe(true);
    await h.fake.hook.idle();
    expect(h.fake.hook.attempts.at(-1)).toMatchObject({ guid: during[0]!.first.guid, redelivery: true, status_code: 200 });
    expect(await sweeps.sweep()).toEqual({ outcome: "swept", asked: [], refused: [] });
    await queueDrained(h.db);
    expect(asks()).toHaveLength(3);

    // Every PR planned exactly once: one comment, a successful plangate/plan, one plan.started.
    for (const s of sent) {
      expect(planCheck(s)?.conclusion).toBe("success");
      expect(h.fake.checkRuns.filter((c) => c.head_sha === s.sha && c.name === "plangate/plan")).toHaveLength(1);
      const comments = h.fake.commentsOn(REPO, s.n);
      expect(comments).toHaveLength(1);
      expect(comments[0]!.body).toContain(`| \`p${s.n}\` | \`default\` | ✅ planned | 1 | 0 | 0 | 0 |`);
    }
    const started = await h.db.pool.query<{ sha: string; n: number }>("select sha, count(*)::int as n from audit_events where action = 'plan.started' group by sha");
    expect(new Map(started.rows.map((r) => [r.sha, r.n]))).toEqual(new Map(sent.map((s) => [s.sha, 1])));
    const recorded = await h.db.pool.query<{ id: string }>("select id from webhook_deliveries where event = 'pull_request'");
    expect(recorded.rows.map((r) => r.id).sort()).toEqual(sent.map((s) => s.first.guid).sort());
    const asked = await h.db.pool.query<{ delivery_id: number; guid: string; status_code: number }>("select delivery_id, guid, status_code from webhook_redeliveries order by delivery_id");
    expect(asked.rows).toEqual(during.map((s) => ({ delivery_id: s.first.id, guid: s.first.guid, status_code: 503 })));

    // /metrics: three redeliveries asked for; the start sweep and three more swept, one failed.
    expect(await metric("plangate_redeliveries_requested_total")).toBe(3);
    expect(await metric('plangate_redelivery_sweeps_total{outcome="swept"}')).toBe(4);
    expect(await metric('plangate_redelivery_sweeps_total{outcome="failed"}')).toBe(1);
    expect(await metric('plangate_redelivery_sweeps_total{outcome="busy"}')).toBe(0);
    expect(h.fake.unexpected).toEqual([]);
  });

  /** Sends an event as GitHub would, but signed with a secret plangate does not have: plangate answers 400 to every attempt of it. */
  async function sendUnverifiable(): Promise<HookAttempt> {
    const target = h.fake.hook.target!;
    h.fake.hook.target = { ...target, secret: "not-the-apps-secret" };
    try {
      return await h.fake.hook.send("issues", examplePayload("issues", "opened"));
    } finally {
      h.fake.hook.target = target;
    }
  }

  test(`a delivery that fails every time is asked for ${REDELIVERIES_PER_DELIVERY} times, by its newest attempt, then left alone`, async () => {
    const sweeps = h.app.redeliveries!;
    const target = h.fake.hook.target!;
    const first = await sendUnverifiable();
    expect(first.status_code).toBe(400);
    h.fake.hook.target = { ...target, secret: "not-the-apps-secret" };
    try {
      const asked: number[] = [];
      for (let i = 0; i < REDELIVERIES_PER_DELIVERY; i++) {
        const result = await sweeps.sweep();
        expect(result).toMatchObject({ outcome: "swept", refused: [] });
        asked.push(...result.asked);
        await h.fake.hook.idle();
      }
      const attempts = h.fake.hook.attempts.filter((a) => a.guid === first.guid);
      expect(attempts.map((a) => [a.redelivery, a.status_code])).toEqual([[false, 400], [true, 400], [true, 400], [true, 400]]);
      // The first attempt, then each failed redelivery in turn; the last is not asked for.
      expect(asked).toEqual(attempts.slice(0, REDELIVERIES_PER_DELIVERY).map((a) => a.id));
      expect(await sweeps.sweep()).toEqual({ outcome: "swept", asked: [], refused: [] });
    } finally {
      h.fake.hook.target = target;
    }
    expect(h.fake.unexpected).toEqual([]);
  });

  test("an attempt GitHub refuses to redeliver (422) is not asked for again, and the sweep goes on", async () => {
    const sweeps = h.app.redeliveries!;
    const first = await sendUnverifiable();
    h.fake.fail("POST", /^\/app\/hook\/deliveries\/\d+\/attempts$/, 422, 1, { message: "Validation Failed" });
    expect(await sweeps.sweep()).toEqual({ outcome: "swept", asked: [], refused: [first.id] });
    expect(await sweeps.sweep()).toEqual({ outcome: "swept", asked: [], refused: [] });
    expect(h.fake.hook.redeliveryRequests).not.toContain(first.id);
    const row = await h.db.pool.query("select refused from webhook_redeliveries where delivery_id = $1", [first.id]);
    expect(row.rows).toEqual([{ refused: 422 }]);
    expect(h.fake.unexpected).toEqual([]);
  });

  test("a sweep is skipped while another process sweeps, never run twice at once", async () => {
    // The test sweeps as another plangate process would (its own connections): the server's sweep meanwhile is skipped.
    const meanwhile = await whileSweepLocked(h.db.pool, () => h.app.redeliveries!.sweep());
    expect(meanwhile).toEqual({ result: { outcome: "busy", asked: [], refused: [] } });
    expect(await h.app.redeliveries!.sweep()).toEqual({ outcome: "swept", asked: [], refused: [] });
  });
});
