// bench:audit-export: `plangate audit export` of 1,000,000 audit events, to /dev/null and through a
// pipe, with its wall time and peak RSS. The events form a correct hash chain (computed here with
// plangate's own auditHash), so the export is of a chain `plangate audit verify` accepts.
// Usage: DATABASE_URL=postgres://… npm run bench:audit-export   (EVENTS=… to change the count)
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { openSync, closeSync } from "node:fs";
import os from "node:os";
import pg from "pg";
import { auditHash, GENESIS_HASH } from "../dist/audit/audit-log.js";
import { migrate } from "../dist/db/migrate.js";
import { createPool } from "../dist/db/pool.js";

const base = process.env.DATABASE_URL;
if (!base) throw new Error("set DATABASE_URL to a PostgreSQL the bench may create a database in");
const EVENTS = Number(process.env.EVENTS ?? 1_000_000);
const BATCH = 10_000;
const ACTIONS = ["command.received", "plan.started", "lock.acquired", "plan.succeeded", "approval.changed", "apply.started", "apply.succeeded", "lock.released"];

const name = `plangate_bench_${randomBytes(6).toString("hex")}`;
const url = new URL(base);
url.pathname = `/${name}`;
const admin = async (sql) => {
  const client = new pg.Client({ connectionString: base });
  await client.connect();
  await client.query(sql);
  await client.end();
};

/** The n-th event: what a busy installation records, a PR's story over and over. */
function event(n, createdAt) {
  const pr = Math.floor(n / 40) + 1;
  return {
    id: n + 1,
    created_at: createdAt,
    action: ACTIONS[n % ACTIONS.length],
    actor: n % 8 === 0 ? `user${pr % 97}` : "plangate",
    repo: `octo-org/infra-${pr % 13}`,
    pull_number: pr,
    project: `project-${n % 5}`,
    workspace: "default",
    sha: (pr * 2654435761 % 2 ** 32).toString(16).padStart(8, "0").repeat(5),
    run_id: Math.floor(n / 4) + 1,
    details: { reason: "bench", attempt: 1, changes: { add: n % 7, change: n % 3, destroy: 0 }, labels: ["infra", "bench"] },
  };
}

async function insertChain(pool) {
  const start = Date.parse("2026-01-01T00:00:00Z");
  let prev = GENESIS_HASH;
  for (let from = 0; from < EVENTS; from += BATCH) {
    const cols = Array.from({ length: 13 }, () => []);
    for (let n = from; n < Math.min(from + BATCH, EVENTS); n++) {
      const row = event(n, new Date(start + n * 7).toISOString());
      const hash = auditHash(prev, row);
      const values = [row.id, row.created_at, row.action, row.actor, row.repo, row.pull_number, row.project, row.workspace, row.sha, row.run_id, JSON.stringify(row.details), prev, hash];
      values.forEach((v, i) => cols[i].push(v));
      prev = hash;
    }
    await pool.query(
      `insert into audit_events (id, created_at, action, actor, repo, pull_number, project, workspace, sha, run_id, details, prev_hash, hash)
       select * from unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[],
                            $9::text[], $10::bigint[], $11::jsonb[], $12::text[], $13::text[])`,
      cols,
    );
  }
  await pool.query("select setval('audit_events_id_seq', $1)", [EVENTS]);
}

/** Reports the child's peak RSS on its way out, whatever makes it exit. */
const REPORT_RSS = `data:text/javascript,process.on("exit",()=>process.stderr.write("maxrss_kb="+process.resourceUsage().maxRSS+"\\n"))`;

/** Runs `plangate audit export` with stdout to `stdout` ("devnull" or "pipe"); its time, peak RSS and what came through. */
function exportTo(stdout) {
  return new Promise((resolve, reject) => {
    const devnull = stdout === "devnull" ? openSync("/dev/null", "w") : undefined;
    const began = process.hrtime.bigint();
    const child = spawn(process.execPath, ["--import", REPORT_RSS, "bin/plangate.js", "audit", "export"], {
      env: { ...process.env, DATABASE_URL: url.toString() },
      stdio: ["ignore", devnull ?? "pipe", "pipe"],
    });
    let stderr = "";
    let bytes = 0;
    let lines = 0;
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout?.on("data", (d) => {
      bytes += d.length;
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (devnull !== undefined) closeSync(devnull);
      const seconds = Number(process.hrtime.bigint() - began) / 1e9;
      const rss = /maxrss_kb=(\d+)/.exec(stderr);
      if (code !== 0 || !rss) return reject(new Error(`export exited ${code}: ${stderr}`));
      resolve({ seconds, maxRssMb: Number(rss[1]) / 1024, bytes, lines });
    });
  });
}

await admin(`create database ${name}`);
const pool = createPool(url.toString(), 2);
try {
  await migrate(pool);
  const t0 = Date.now();
  await insertChain(pool);
  const inserted = (Date.now() - t0) / 1000;
  const { rows } = await pool.query("select pg_size_pretty(pg_total_relation_size('audit_events')) as size");
  const results = { devnull: await exportTo("devnull"), pipe: await exportTo("pipe") };
  if (results.pipe.lines !== EVENTS) throw new Error(`the pipe got ${results.pipe.lines} lines, not ${EVENTS}`);
  console.log(`bench:audit-export — ${new Date().toISOString()}, ${os.cpus().length} cores, node ${process.version}`);
  console.log(`${EVENTS.toLocaleString("en")} events inserted with a correct chain in ${inserted.toFixed(1)} s (audit_events: ${rows[0].size})`);
  for (const [to, r] of Object.entries(results)) {
    console.log(`export to ${to === "devnull" ? "/dev/null" : "a pipe"}: ${r.seconds.toFixed(1)} s (${Math.round(EVENTS / r.seconds).toLocaleString("en")} events/s), peak RSS ${r.maxRssMb.toFixed(0)} MB${r.bytes ? `, ${(r.bytes / 2 ** 20).toFixed(0)} MiB of NDJSON` : ""}`);
  }
} finally {
  await pool.end();
  await admin(`drop database if exists ${name} with (force)`);
}
