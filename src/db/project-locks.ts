import type { Pool, PoolClient } from "./pool.js";

/** The advisory lock class of (repo, project, workspace) keys; the key itself is hashed into the second half. */
const PROJECT_LOCK_CLASS = 7_263_002;

export interface ProjectKey {
  repo: string;
  project: string;
  workspace: string;
}

const keyText = (k: ProjectKey) => JSON.stringify([k.repo, k.project, k.workspace]);

/**
 * Runs fn while holding a Postgres advisory lock on each (repo, project,
 * workspace), so plans and applies of one project never overlap, whichever
 * process runs them. Locks are taken in one sorted order (no deadlock) on a
 * connection of their own, and end with it if the process dies.
 */
export async function withProjectLocks<T>(pool: Pool, keys: ProjectKey[], fn: () => Promise<T>): Promise<T> {
  const texts = [...new Set(keys.map(keyText))].sort();
  if (!texts.length) return fn();
  const client: PoolClient = await pool.connect();
  try {
    for (const text of texts) await client.query("select pg_advisory_lock($1, hashtext($2))", [PROJECT_LOCK_CLASS, text]);
    return await fn();
  } finally {
    // A connection that cannot unlock is dropped, which ends its locks too.
    const unlocked = await client.query("select pg_advisory_unlock_all()").then(() => true, () => false);
    client.release(!unlocked);
  }
}
