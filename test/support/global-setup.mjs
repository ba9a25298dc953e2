// Real Postgres for every test file: DATABASE_URL when set, else an embedded server for this run.
// Plain ESM on the built code: Jest loads global setup outside its transform pipeline.
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { startEmbeddedPostgres } from "../../dist/db/embedded.js";
import { migrate } from "../../dist/db/migrate.js";
import { createPool } from "../../dist/db/pool.js";

export default async function globalSetup() {
  // Every temporary folder of the run (the tests', the app's, killed workers' and their sandboxes') goes under one
  // folder, removed by the global teardown: os.tmpdir() reads TMPDIR, and the test workers and the processes they
  // start inherit it. Open to the sandbox's user, as /tmp is.
  const tmp = await mkdtemp(path.join(os.tmpdir(), "plangate-tests-"));
  await chmod(tmp, 0o755);
  process.env.PLANGATE_TEST_TMPDIR = tmp;
  process.env.TMPDIR = tmp;
  if (!process.env.DATABASE_URL) {
    const dir = await mkdtemp(path.join(os.tmpdir(), "plangate-test-pg-"));
    await chmod(dir, 0o755); // initdb runs as the postgres user when we are root
    globalThis.__plangateEmbedded = await startEmbeddedPostgres(dir);
    process.env.DATABASE_URL = globalThis.__plangateEmbedded.url;
    console.log(`\nDATABASE_URL is not set: tests use an embedded PostgreSQL in ${dir}`);
  }
  // One migrated database for this run, which each test file's database is copied from (createTestDatabase):
  // a copy takes a tenth of the time of migrating afresh, a hundred times over.
  const template = `plangate_template_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  await admin.query(`create database ${template}`);
  await admin.end();
  const url = new URL(process.env.DATABASE_URL);
  url.pathname = `/${template}`;
  const pool = createPool(url.toString());
  await migrate(pool);
  await pool.end();
  process.env.PLANGATE_TEST_TEMPLATE = template;
}
