import type { Queryable } from "./pool.js";

export interface LockKey {
  repo: string;
  project: string;
  workspace: string;
}

export type LockResult = { held: true; fresh: boolean } | { held: false; holder: number };

/** Takes (or confirms) the PR's lock on a project; tells who holds it otherwise. */
export async function acquireLock(tx: Queryable, key: LockKey, pullNumber: number): Promise<LockResult> {
  const inserted = await tx.query(
    "insert into locks (repo, project, workspace, pull_number) values ($1, $2, $3, $4) on conflict do nothing",
    [key.repo, key.project, key.workspace, pullNumber],
  );
  if (inserted.rowCount === 1) return { held: true, fresh: true };
  const { rows } = await tx.query<{ pull_number: number }>(
    "select pull_number from locks where repo = $1 and project = $2 and workspace = $3 for update",
    [key.repo, key.project, key.workspace],
  );
  const holder = rows[0]?.pull_number;
  if (holder === undefined) return acquireLock(tx, key, pullNumber); // released in between
  return holder === pullNumber ? { held: true, fresh: false } : { held: false, holder };
}

/** Releases every lock the PR holds; returns what was released. */
export async function releaseLocks(tx: Queryable, repo: string, pullNumber: number): Promise<LockKey[]> {
  const { rows } = await tx.query<LockKey>("delete from locks where repo = $1 and pull_number = $2 returning repo, project, workspace", [repo, pullNumber]);
  return rows.sort((a, b) => (a.project < b.project ? -1 : 1));
}
