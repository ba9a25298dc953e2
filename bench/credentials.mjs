// The cost of minting a run's identity (DESIGN.md section 3): one signing-key
// look-up (cached), one RS256 signature per audience, one audit transaction,
// and the token files written. Against the machine's Postgres (DATABASE_URL)
// in a schema of its own; the first mint also generates the first key.
// Run: npm run bench:credentials
import { mkdtempSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";

const { migrate } = await import("../dist/db/migrate.js");
const { SigningKeys } = await import("../dist/credentials/signing-keys.js");
const { RunTokens } = await import("../dist/credentials/run-tokens.js");
const { systemClock } = await import("../dist/sandbox/clock.js");

const url = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/test";
const schema = `bench_credentials_${process.pid}`;
const admin = new pg.Pool({ connectionString: url });
await admin.query(`create schema ${schema}`);
const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}` });
const ROUNDS = Number(process.env.ROUNDS ?? 200);
try {
  await migrate(pool);
  const keys = new SigningKeys(pool, Buffer.alloc(32, 7), { rotationMs: 30 * 86_400_000 }, systemClock);
  const tokens = new RunTokens(pool, keys, "https://plangate.example.com", systemClock);
  const identity = { repository: "acme/infra", repositoryId: 1, pullRequest: 1, sha: "f".repeat(40), ref: "refs/pull/1/head", actor: "alice", runId: 1 };
  const work = mkdtempSync(path.join(os.tmpdir(), "plangate-bench-credentials-"));
  const configs = {
    aws: { aws: { plan_role_arn: "arn:aws:iam::123456789012:role/p", apply_role_arn: "arn:aws:iam::123456789012:role/a", audience: "sts.amazonaws.com" } },
    "aws+vault": { aws: { role_arn: "arn:aws:iam::123456789012:role/p", audience: "sts.amazonaws.com" }, tokens: [{ audience: "vault.example.com" }] },
  };
  const mintOnce = async (credentials) => {
    const dir = await mkdtemp(path.join(work, ".plangate-credentials-"));
    const issued = await tokens.issue({ credentials, phase: "plan", event: "pull_request", project: { name: "network", workspace: "default" }, identity, deadline: Date.now() + 1_800_000, dir });
    for (const f of issued.files) await writeFile(f.path, f.content, { mode: 0o400, flag: "wx" });
    await rm(dir, { recursive: true, force: true });
  };
  let started = performance.now();
  await mintOnce(configs.aws);
  const first = performance.now() - started;
  const results = { firstMintWithKeyGenerationMs: Math.round(first) };
  for (const [name, credentials] of Object.entries(configs)) {
    const times = [];
    for (let i = 0; i < ROUNDS; i++) {
      started = performance.now();
      await mintOnce(credentials);
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    results[name] = { rounds: ROUNDS, medianMs: +times[Math.floor(ROUNDS / 2)].toFixed(2), p95Ms: +times[Math.floor(ROUNDS * 0.95)].toFixed(2) };
  }
  console.log(JSON.stringify(results, null, 2));
  rmSync(work, { recursive: true, force: true });
} finally {
  await pool.end();
  await admin.query(`drop schema ${schema} cascade`);
  await admin.end();
}
