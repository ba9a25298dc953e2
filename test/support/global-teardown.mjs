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
}
