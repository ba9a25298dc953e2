// Webhook ingest: deliveries/s and latency of the webhook path (verify, record, enqueue, 200)
// against a running plangate server on real Postgres. Usage: DATABASE_URL=... node bench/ingest.mjs
import { spawn } from "node:child_process";
import { createHmac, generateKeyPairSync, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import pg from "pg";

const require = createRequire(import.meta.url);
const DURATION = Number(process.env.BENCH_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const PORT = 3917;
const SECRET = "bench-secret";
const base = process.env.DATABASE_URL;
if (!base) throw new Error("set DATABASE_URL to a PostgreSQL the bench may create a database in");

const dbName = `plangate_bench_${Date.now()}`;
const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`create database ${dbName}`);
const url = new URL(base);
url.pathname = `/${dbName}`;

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const dataDir = mkdtempSync(path.join(os.tmpdir(), "plangate-bench-"));
const server = spawn("node", ["bin/plangate.js", "start"], {
  env: {
    ...process.env,
    APP_ID: "1",
    PRIVATE_KEY: privateKey.export({ type: "pkcs1", format: "pem" }),
    WEBHOOK_SECRET: SECRET,
    DATABASE_URL: url.toString(),
    PLANGATE_DATA_DIR: dataDir,
    PLANGATE_WORKERS: "0",
    PORT: String(PORT),
    HOST: "127.0.0.1",
    LOG_LEVEL: "error",
  },
  stdio: ["ignore", "inherit", "inherit"],
});
for (let i = 0; ; i++) {
  try {
    await fetch(`http://127.0.0.1:${PORT}/ping`);
    break;
  } catch {
    if (i > 100) throw new Error("server did not start");
    await new Promise((r) => setTimeout(r, 200));
  }
}

const index = require("@octokit/webhooks-examples/api.github.com/index.json");
const payload = index.find((e) => e.name === "pull_request").examples.find((e) => e.action === "opened" && e.installation);
const body = JSON.stringify(payload);
const signature = `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`;

const result = await autocannon({
  url: `http://127.0.0.1:${PORT}/api/github/webhooks`,
  method: "POST",
  connections: CONNECTIONS,
  duration: DURATION,
  headers: { "content-type": "application/json", "x-github-event": "pull_request", "x-hub-signature-256": signature },
  body,
  setupClient(client) {
    client.on("response", () => client.setHeaders({ "content-type": "application/json", "x-github-event": "pull_request", "x-hub-signature-256": signature, "x-github-delivery": randomUUID() }));
    client.setHeaders({ "content-type": "application/json", "x-github-event": "pull_request", "x-hub-signature-256": signature, "x-github-delivery": randomUUID() });
  },
});

const check = new pg.Client({ connectionString: url.toString() });
await check.connect();
const deliveries = (await check.query("select count(*)::int as n from webhook_deliveries")).rows[0].n;
const jobs = (await check.query("select count(*)::int as n from graphile_worker.jobs")).rows[0].n;
await check.end();
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));
await admin.query(`drop database ${dbName} with (force)`);
await admin.end();

console.log(JSON.stringify({
  seconds: DURATION,
  connections: CONNECTIONS,
  requests: result.requests.total,
  non2xx: result.non2xx,
  errors: result.errors,
  deliveriesPerSecond: Math.round(result.requests.average),
  latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
  recorded: { deliveries, jobs },
}, null, 2));
