import { randomBytes } from "node:crypto";
import pg from "pg";
import { migrate } from "../../src/db/migrate.js";
import { createPool, type Pool } from "../../src/db/pool.js";

export interface TestDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

const baseUrl = () => {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL is not set (global setup should have set it)");
  return url;
};

/**
 * A fresh, migrated database of its own for one test file: a copy of the run's migrated template
 * (global setup), or, without one, created and migrated here.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `plangate_test_${randomBytes(6).toString("hex")}`;
  const template = process.env.PLANGATE_TEST_TEMPLATE;
  const admin = new pg.Client({ connectionString: baseUrl() });
  await admin.connect();
  await admin.query(template ? `create database ${name} template ${template}` : `create database ${name}`);
  await admin.end();
  const url = new URL(baseUrl());
  url.pathname = `/${name}`;
  const pool = createPool(url.toString());
  if (!template) await migrate(pool);
  return {
    url: url.toString(),
    pool,
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: baseUrl() });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}
