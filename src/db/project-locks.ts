import type { Pool, PoolClient } from "./pool.js";

/** The advisory lock class of (repo, project, workspace) keys; the key itself is hashed into the second half. */
const PROJECT_LOCK_CLASS = 7_263_002;

export interface ProjectKey {
  repo: string;
  project: string;
  workspace: string;
}

const keyText = (k: ProjectKey) => JSON.stringify([k.repo, k.project, k.workspace]);

/** Project locks held on a connection of their own; release() ends them. */
export interface HeldLocks {
  release(): Promise<void>;
}

/**
 * Takes a Postgres advisory lock on each (repo, project, workspace), in one
 * sorted order (no deadlock), on a connection of their own: they end with it
 * if the process dies. `wait: false` takes them only if all are free at once
 * and returns undefined otherwise, holding none.
 */
export async function acquireProjectLocks(pool: Pool, keys: ProjectKey[], opts: { wait: boolean } = { wait: true }): Promise<HeldLocks | undefined> {
  const texts = [...new Set(keys.map(keyText))].sort();
  if (!texts.length) return { release: async () => undefined };
  const client: PoolClient = await pool.connect();
  const release = async () => {
    // A connection that cannot unlock is dropped, which ends its locks too.
    const unlocked = await client.query("select pg_advisory_unlock_all()").then(() => true, () => false);
    client.release(!unlocked);
  };
  try {
    for (const text of texts) {
      if (opts.wait) await client.query("select pg_advisory_lock($1, hashtext($2))", [PROJECT_LOCK_CLASS, text]);
      else if (!(await client.query<{ locked: boolean }>("select pg_try_advisory_lock($1, hashtext($2)) as locked", [PROJECT_LOCK_CLASS, text])).rows[0]!.locked) {
        await release();
        return undefined;
      }
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}

/**
 * Runs fn while holding the project locks of `keys` (acquireProjectLocks,
 * waiting for them), so plans and applies of one project never overlap,
 * whichever process runs them.
 */
export async function withProjectLocks<T>(pool: Pool, keys: ProjectKey[], fn: () => Promise<T>): Promise<T> {
  const held = (await acquireProjectLocks(pool, keys))!;
  try {
    return await fn();
  } finally {
    await held.release();
  }
}
