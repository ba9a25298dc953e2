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

/**
 * Takes (or confirms) the PR's lock on many projects of one repository at
 * once: one insert for all, one locked read of those another PR (or this one)
 * holds already. Keyed by `project\0workspace`. Rows are taken in sorted
 * order, as two plans taking overlapping locks must not deadlock.
 */
export async function acquireLocks(tx: Queryable, repo: string, keys: { project: string; workspace: string }[], pullNumber: number): Promise<Map<string, LockResult>> {
  const keyOf = (k: { project: string; workspace: string }) => `${k.project}\0${k.workspace}`;
  const distinct = [...new Map(keys.map((k) => [keyOf(k), { project: k.project, workspace: k.workspace }])).values()];
  const wanted = JSON.stringify(distinct);
  const results = new Map<string, LockResult>();
  const inserted = await tx.query<{ project: string; workspace: string }>(
    `insert into locks (repo, project, workspace, pull_number)
       select $1, project, workspace, $3 from jsonb_to_recordset($2::jsonb) as k(project text, workspace text) order by project, workspace
     on conflict do nothing returning project, workspace`,
    [repo, wanted, pullNumber],
  );
  for (const row of inserted.rows) results.set(keyOf(row), { held: true, fresh: true });
  if (results.size === distinct.length) return results;
  const { rows } = await tx.query<{ project: string; workspace: string; pull_number: number }>(
    `select l.project, l.workspace, l.pull_number from locks l join jsonb_to_recordset($2::jsonb) as k(project text, workspace text)
        on l.project = k.project and l.workspace = k.workspace
      where l.repo = $1 order by l.project, l.workspace for update of l`,
    [repo, wanted],
  );
  for (const row of rows) {
    const key = keyOf(row);
    if (!results.has(key)) results.set(key, row.pull_number === pullNumber ? { held: true, fresh: false } : { held: false, holder: row.pull_number });
  }
  // A lock released in between: taken one by one.
  for (const k of distinct) if (!results.has(keyOf(k))) results.set(keyOf(k), await acquireLock(tx, { repo, ...k }, pullNumber));
  return results;
}
