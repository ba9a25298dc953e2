import type { Queryable } from "./pool.js";

/** A repository a dashboard user can read, and whether they can write to it. */
export interface RepoAccess {
  repo: string;
  write: boolean;
}

export interface DashboardSession {
  login: string;
  /** The user's OAuth token, sealed. */
  token: Buffer;
  repos: RepoAccess[];
  csrf: string;
}

/** Remembers a login's state (by hash) until `ttlMs` from now. */
export async function storeOAuthState(db: Queryable, stateHash: string, ttlMs: number): Promise<void> {
  await db.query("delete from oauth_states where expires_at < now()");
  await db.query("insert into oauth_states (state_hash, expires_at) values ($1, now() + $2 * interval '1 millisecond')", [stateHash, ttlMs]);
}

/** Uses up a login's state: true once, only for a state stored and not expired. */
export async function consumeOAuthState(db: Queryable, stateHash: string): Promise<boolean> {
  const { rowCount } = await db.query("delete from oauth_states where state_hash = $1 and expires_at > now()", [stateHash]);
  return rowCount === 1;
}

export async function createSession(db: Queryable, idHash: string, session: DashboardSession, ttlMs: number): Promise<void> {
  await db.query("delete from dashboard_sessions where expires_at < now()");
  await db.query(
    "insert into dashboard_sessions (id_hash, login, token, repos, csrf, expires_at) values ($1, $2, $3, $4, $5, now() + $6 * interval '1 millisecond')",
    [idHash, session.login, session.token, JSON.stringify(session.repos), session.csrf, ttlMs],
  );
}

/** The unexpired session with this id hash, if any; `reposStale` when its repositories were last asked of GitHub over `recheckMs` ago. */
export async function findSession(db: Queryable, idHash: string, recheckMs: number): Promise<(DashboardSession & { reposStale: boolean }) | undefined> {
  const { rows } = await db.query<DashboardSession & { reposStale: boolean }>(
    `select login, token, repos, csrf, repos_checked_at < now() - $2 * interval '1 millisecond' as "reposStale"
       from dashboard_sessions where id_hash = $1 and expires_at > now()`,
    [idHash, recheckMs],
  );
  return rows[0];
}

/** The session's repositories as GitHub says they are now. */
export async function updateSessionRepos(db: Queryable, idHash: string, repos: RepoAccess[]): Promise<void> {
  await db.query("update dashboard_sessions set repos = $2, repos_checked_at = now() where id_hash = $1", [idHash, JSON.stringify(repos)]);
}

export async function deleteSession(db: Queryable, idHash: string): Promise<void> {
  await db.query("delete from dashboard_sessions where id_hash = $1", [idHash]);
}
