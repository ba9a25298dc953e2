import type { Clock } from "../../src/sandbox/clock.js";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino, type Logger } from "pino";
import { freePort } from "../../src/db/embedded.js";
import { startPlangate, type Plangate } from "../../src/main.js";
import { bwrapWorks } from "../../src/sandbox/sandbox.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { readSettings, type Settings } from "../../src/settings/settings.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { FakeGitHub } from "./fake-github.js";
import { deliver, examplePayload } from "./webhooks.js";

export const WEBHOOK_SECRET = "test-webhook-secret";

export interface Harness {
  app: Plangate;
  fake: FakeGitHub;
  db: TestDatabase;
  settings: Settings;
  /** The environment the app's settings came from (to start more plangate processes like it). */
  env: Record<string, string>;
  url: string;
  close(): Promise<void>;
}

/** host:port of a postgres URL (the tests' terraform state lives in the test database). */
export const databaseHostPort = (url: string) => {
  const u = new URL(url);
  return `${u.hostname || "127.0.0.1"}:${u.port || "5432"}`;
};

/**
 * Starts the whole app (server + worker) on a fresh database (or `database`), pointed at a fake GitHub Enterprise
 * Server whose App webhook goes to it; `log` receives its log.
 */
export async function startHarness(env: Record<string, string> = {}, options: { log?: Logger; clock?: Clock; database?: TestDatabase } = {}): Promise<Harness> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const fake = new FakeGitHub(publicKey.export({ type: "spki", format: "pem" }).toString());
  await fake.start();
  const db = options.database ?? (await createTestDatabase());
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "plangate-data-"));
  chmodSync(dataDir, 0o755);
  const appEnv: Record<string, string> = {
    APP_ID: String(fake.app.id),
    PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    WEBHOOK_SECRET,
    GHE_HOST: fake.host,
    GHE_PROTOCOL: "http",
    DATABASE_URL: db.url,
    PLANGATE_DATA_DIR: dataDir,
    PLANGATE_ENCRYPTION_KEY: "11".repeat(32),
    PLANGATE_WORKERS: "2",
    PLANGATE_JOB_TIMEOUT: "120s",
    // The fake GitHub has no rate limits: in tests, writes 50 ms apart instead of GitHub's second keep the
    // suite quick. Tests of the order and pacing of writes set "1s"; benches keep the default.
    ...(process.env.JEST_WORKER_ID ? { PLANGATE_GITHUB_WRITE_INTERVAL: "50ms" } : {}),
    // Plans run in bubblewrap, never silently unsandboxed.
    PLANGATE_SANDBOX: "bwrap",
    LOG_LEVEL: "warn",
    ...env,
    // The tests' state backend (their database) is opened, and a test's own destinations besides.
    PLANGATE_SANDBOX_EGRESS_ALLOW: [databaseHostPort(db.url), env.PLANGATE_SANDBOX_EGRESS_ALLOW].filter(Boolean).join(","),
  };
  // Probot's Server treats port 0 as "use 3000"; a test that must know the port first (an issuer URL) gives PORT.
  const settings = { ...readSettings(appEnv), port: appEnv.PORT ? Number(appEnv.PORT) : await freePort() };
  // GitHub sends the App's webhooks (fake.hook) to the server's webhook URL, signed with the App's secret.
  fake.hook.target = { url: `http://127.0.0.1:${settings.port}/api/github/webhooks`, secret: appEnv.WEBHOOK_SECRET! };
  const app = await startPlangate(settings, { server: true, worker: true, host: "127.0.0.1", log: options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }), clock: options.clock });
  return {
    app,
    fake,
    db,
    settings,
    env: appEnv,
    url: `http://127.0.0.1:${app.port}`,
    async close() {
      await app.stop();
      await db.drop();
      await fake.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a truthy value; fails with `what` after the timeout. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the job queue holds no jobs (every job finished or failed for good). */
export async function queueDrained(db: TestDatabase): Promise<void> {
  await waitFor("the job queue to drain", async () => {
    const { rows } = await db.pool.query<{ n: number }>("select count(*)::int as n from graphile_worker.jobs where attempts < max_attempts");
    return rows[0]!.n === 0;
  });
}

/**
 * Until the returned function is called, a job that failed waits at most about
 * `waitS` seconds for its next attempt (graphile_worker.reschedule_jobs): the
 * queue backs off e^attempt seconds (2.7, 7.4, 20, 55: about 85 s over five
 * attempts), and a test of what the retries come to need not sit that out.
 * The retries still come one by one, seconds apart, as they do in production.
 * Jobs waiting on purpose (attempts 0, as a plan behind a busy project's lock)
 * and running jobs are left alone.
 */
export function shortBackoff(db: TestDatabase, waitS = 3): () => Promise<void> {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await db.pool.query(
        `select count(*) from graphile_worker.reschedule_jobs(
           (select array_agg(id) from graphile_worker.jobs
             where last_error is not null and attempts > 0 and attempts < max_attempts and locked_at is null and run_at > now() + make_interval(secs => $1)),
           run_at => now() + make_interval(secs => $1))`,
        [waitS],
      );
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

/** Whether terraform and bubblewrap work here (the app's plans always run in bwrap). */
export const enginesWork = () => !!findBinary("terraform") && bwrapWorks();

/** `test` when terraform and bubblewrap work here; see toolTest. */
export const engineTest: typeof test = ((name: string, fn: jest.ProvidesCallback, timeout?: number) => toolTest(enginesWork(), "terraform and bubblewrap", name, fn, timeout)) as typeof test;

/**
 * A test that needs tools from the machine: in CI (CI=true) a missing tool
 * FAILS the test; elsewhere it prints one loud line that the test did not run.
 */
export function toolTest(available: boolean, tools: string, name: string, fn: jest.ProvidesCallback, timeout?: number): void {
  if (available) return test(name, fn, timeout);
  if (process.env.CI) return test(name, () => { throw new Error(`${tools} must be installed in CI (.ci/run installs them): "${name}" cannot run`); });
  return test(name, () => console.warn(`!!! ${tools} not usable here: "${name}" DID NOT RUN !!!`));
}

/** Sends pull_request.closed (merged or not) for a PR, as GitHub does, and waits for its jobs. */
export async function closePullRequest(h: Harness, number: number, headSha: string, merge?: { mergeSha: string; mergedBy?: string; base?: string }): Promise<void> {
  const payload = examplePayload("pull_request", "closed");
  if (merge?.base) payload.pull_request.base.ref = merge.base;
  Object.assign(payload.pull_request, { number, merged: !!merge, merge_commit_sha: merge?.mergeSha ?? null, merged_by: merge ? { login: merge.mergedBy ?? "merger" } : null });
  payload.pull_request.head.sha = headSha;
  const res = await deliver(h.url, "pull_request", payload, h.settings.webhookSecret);
  if (res.status !== 200) throw new Error(`closing #${number} answered ${res.status}`);
  await queueDrained(h.db);
}
