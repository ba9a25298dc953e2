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

/** Postgres's code for a lock not obtained within lock_timeout. */
const LOCK_NOT_AVAILABLE = "55P03";

/**
 * Takes a Postgres advisory lock on each (repo, project, workspace), in one
 * sorted order (no deadlock), on a connection of their own: they end with it
 * if the process dies. `waitMs`: wait at most this long for each, and return
 * undefined (holding none) when one stays taken; absent: wait as long as it takes.
 */
export async function acquireProjectLocks(pool: Pool, keys: ProjectKey[], opts: { waitMs?: number } = {}): Promise<HeldLocks | undefined> {
  const texts = [...new Set(keys.map(keyText))].sort();
  if (!texts.length) return { release: async () => undefined };
  const client: PoolClient = await pool.connect();
  const release = async () => {
    // A connection that cannot unlock is dropped, which ends its locks too.
    const unlocked = await client.query("select pg_advisory_unlock_all()").then(() => true, () => false);
    client.release(!unlocked);
  };
  try {
    if (opts.waitMs !== undefined) await client.query("select set_config('lock_timeout', $1, false)", [`${Math.max(1, Math.round(opts.waitMs))}ms`]);
    for (const text of texts) await client.query("select pg_advisory_lock($1, hashtext($2))", [PROJECT_LOCK_CLASS, text]);
    if (opts.waitMs !== undefined) await client.query("reset lock_timeout");
  } catch (error) {
    const timedOut = (error as { code?: string }).code === LOCK_NOT_AVAILABLE;
    if (timedOut) await client.query("reset lock_timeout").catch(() => undefined);
    await release();
    if (timedOut) return undefined;
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
