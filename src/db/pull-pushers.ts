import type { Queryable } from "./pool.js";

/** Someone who pushed to a PR's branch (the sender of a pull_request.synchronize). */
export interface Pusher {
  repo: string;
  pullNumber: number;
  login: string;
}

/** Records a pusher once; recorded with the delivery that named them, so a folded or dropped plan job loses nobody. */
export async function recordPusher(db: Queryable, p: Pusher): Promise<void> {
  await db.query("insert into pull_pushers (repo, pull_number, login) values ($1, $2, $3) on conflict do nothing", [p.repo, p.pullNumber, p.login]);
}

/** Everyone who ever pushed to the PR's branch, lower-cased (GitHub logins are case-insensitive). */
export async function pushersOf(db: Queryable, repo: string, pullNumber: number): Promise<string[]> {
  const { rows } = await db.query<{ login: string }>("select login from pull_pushers where repo = $1 and pull_number = $2 order by login", [repo, pullNumber]);
  return rows.map((r) => r.login.toLowerCase());
}
