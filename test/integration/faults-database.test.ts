import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import pg from "pg";
import { freePort } from "../../src/db/embedded.js";
import { createPool, type Pool } from "../../src/db/pool.js";
import { engineTest, waitFor, WEBHOOK_SECRET } from "../support/app-harness.js";
import { FakeGitHub } from "../support/fake-github.js";
import { GitRepo } from "../support/git-repo.js";
import { OwnPostgres } from "../support/own-postgres.js";
import { deliver, examplePayload, type Delivered } from "../support/webhooks.js";

jest.setTimeout(170_000);

/**
 * PostgreSQL restarted under plangate while webhooks keep coming: plangate
 * (real `plangate start` process) answers 503 while the database is down, so
 * GitHub redelivers; it reconnects by itself, and nothing it accepted is lost.
 */
const REPO = "Codertocat/Hello-World";
let pgServer: OwnPostgres;
let fake: FakeGitHub;
let app: ChildProcess;
let appUrl: string;
let appLog = "";
let repo: GitRepo;
let pool: Pool | undefined;

beforeAll(async () => {
  pgServer = new OwnPostgres();
  await pgServer.init();
  const admin = new pg.Client({ connectionString: pgServer.url });
  await admin.connect();
  await admin.query("create database plangate");
  await admin.end();

  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  fake = new FakeGitHub(publicKey.export({ type: "spki", format: "pem" }).toString());
  await fake.start();
  repo = new GitRepo(fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });

  const dataDir = mkdtempSync(path.join(os.tmpdir(), "plangate-data-"));
  chmodSync(dataDir, 0o755);
  const port = await freePort();
  appUrl = `http://127.0.0.1:${port}`;
  app = spawn("node", ["bin/plangate.js", "start"], {
    env: {
      ...process.env,
      APP_ID: "4242",
      PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
      WEBHOOK_SECRET,
      GHE_HOST: fake.host,
      GHE_PROTOCOL: "http",
      DATABASE_URL: pgServer.urlOf("plangate"),
      PLANGATE_DATA_DIR: dataDir,
      PLANGATE_ENCRYPTION_KEY: "11".repeat(32),
      PLANGATE_WORKERS: "2",
      PLANGATE_JOB_TIMEOUT: "120s",
      PLANGATE_SANDBOX: "bwrap",
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (chunk: Buffer) => (appLog = (appLog + chunk.toString()).slice(-20_000));
  app.stdout!.on("data", keep);
  app.stderr!.on("data", keep);
  await waitFor("plangate to be ready", async () => (await fetch(`${appUrl}/readyz`).catch(() => undefined))?.status === 200, 60_000);
});
afterAll(async () => {
  app?.kill("SIGKILL");
  await pool?.end();
  pgServer?.destroy();
  await fake?.stop();
});

interface Sent {
  n: number;
  sha: string;
  payload: Record<string, any>;
  first: Delivered;
}

/** Commits PR `n`'s change and delivers its pull_request.opened, as GitHub does; resolves with plangate's answer. */
async function sendPr(n: number): Promise<Sent> {
  const sha = repo.commit({ [`p${n}/main.tf`]: `resource "terraform_data" "r" {\n  input = "${n}"\n}\n` }, `db-${n}`);
  fake.pullFiles.set(`${REPO}#${n}`, [`p${n}/main.tf`]);
  fake.pulls.set(`${REPO}#${n}`, { headSha: sha });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number: n, draft: false });
  payload.pull_request.head.sha = sha;
  return { n, sha, payload, first: await deliver(appUrl, "pull_request", payload, WEBHOOK_SECRET) };
}

const planned = (s: Sent) => fake.checkRuns.find((c) => c.head_sha === s.sha && c.name === "plangate/plan" && c.status === "completed");

describe("the database restarted mid-load", () => {
  engineTest("webhooks answer 503 while it is down, plangate reconnects on its own, every accepted and redelivered PR is planned once", async () => {
    try {
      // PRs are delivered one after another, each once the previous one is answered, around the restart.
      let next = 100;
      const sendSome = async (count: number) => {
        const batch: Sent[] = [];
        for (let i = 0; i < count; i++) batch.push(await sendPr(next++));
        return batch;
      };
      const before = await sendSome(4);
      expect(before.map((s) => s.first.status)).toEqual([200, 200, 200, 200]);
      await waitFor("the first plans under way", () => fake.checkRuns.length > 0);

      pgServer.stop();
      const readyWhileDown = await fetch(`${appUrl}/readyz`);
      expect(readyWhileDown.status).toBe(503);
      expect(await readyWhileDown.text()).toContain("not ready: database:");
      // Whatever is sent while the database is down is refused with 503 (GitHub redelivers those), never 500 or a hang.
      const during = await sendSome(4);
      expect(during.map((s) => s.first.status)).toEqual([503, 503, 503, 503]);
      expect(during[0]!.first.text).toContain("database");
      pgServer.start();
      // The same process answers after the restart: it reconnected by itself.
      const after = await sendSome(3);
      expect(after.map((s) => s.first.status)).toEqual([200, 200, 200]);
      expect(app.exitCode).toBeNull();
      const sent = [...before, ...during, ...after];

      // GitHub redelivers what got 503, with the same delivery id.
      const refused = sent.filter((s) => s.first.status !== 200);
      for (const s of refused) expect((await deliver(appUrl, "pull_request", s.payload, WEBHOOK_SECRET, s.first.id)).status).toBe(200);

      await waitFor("every PR planned", () => sent.every(planned), 120_000);
      pool = createPool(pgServer.urlOf("plangate"), 2);
      await waitFor("the queue to drain", async () => (await pool!.query("select count(*)::int as n from graphile_worker.jobs where attempts < max_attempts")).rows[0].n === 0, 60_000);
      for (const s of sent) {
        expect(planned(s)?.conclusion).toBe("success");
        const comments = fake.commentsOn(REPO, s.n);
        expect(comments).toHaveLength(1);
        expect(comments[0]!.body).toContain(`| \`p${s.n}\` | \`default\` | ✅ planned | 1 | 0 | 0 | 0 |`);
      }
      const deliveries = await pool.query("select id from webhook_deliveries");
      expect(deliveries.rows.map((r) => r.id).sort()).toEqual(sent.map((s) => s.first.id).sort());
      const audit = await pool.query<{ sha: string; actions: string[] }>("select sha, array_agg(action order by id) as actions from audit_events where action like 'plan.%' group by sha");
      const bySha = new Map(audit.rows.map((r) => [r.sha, r.actions]));
      for (const s of sent) expect([s.n, bySha.get(s.sha)]).toEqual([s.n, ["plan.started", "plan.succeeded"]]);
      expect(app.exitCode).toBeNull();
      expect(fake.unexpected).toEqual([]);
    } catch (error) {
      // What plangate said and what the queue holds, to tell a stuck worker from a slow one.
      console.log(`plangate's output (tail):\n${appLog.slice(-6000)}`);
      pool ??= createPool(pgServer.urlOf("plangate"), 1);
      const jobs = await pool.query("select id, task_identifier, attempts, locked_by, run_at, last_error from graphile_worker.jobs").catch(() => undefined);
      if (jobs) console.log("jobs left:", JSON.stringify(jobs.rows));
      throw error;
    }
  });
});
