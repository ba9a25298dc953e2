// Real Postgres for every test file: DATABASE_URL when set, else an embedded server for this run.
// Plain ESM on the built code: Jest loads global setup outside its transform pipeline.
import { chmod, mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startEmbeddedPostgres } from "../../dist/db/embedded.js";

export default async function globalSetup() {
  if (process.env.DATABASE_URL) return;
  const dir = await mkdtemp(path.join(os.tmpdir(), "plangate-test-pg-"));
  await chmod(dir, 0o755); // initdb runs as the postgres user when we are root
  globalThis.__plangateEmbedded = await startEmbeddedPostgres(dir);
  process.env.DATABASE_URL = globalThis.__plangateEmbedded.url;
  console.log(`\nDATABASE_URL is not set: tests use an embedded PostgreSQL in ${dir}`);
}
