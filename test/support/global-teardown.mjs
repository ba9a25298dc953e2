import { rm } from "node:fs/promises";
import pg from "pg";

export default async function globalTeardown() {
  const template = process.env.PLANGATE_TEST_TEMPLATE;
  if (template && process.env.DATABASE_URL) {
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    await admin.query(`drop database if exists ${template} with (force)`);
    await admin.end();
  }
  await globalThis.__plangateEmbedded?.stop();
  // The run's temporary folders (see global-setup), whatever a test or a killed process left in them.
  if (process.env.PLANGATE_TEST_TMPDIR) await rm(process.env.PLANGATE_TEST_TMPDIR, { recursive: true, force: true });
}
