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

/** Someone who pushed to a branch of a repository (the sender of a push event), PR or not. */
export interface BranchPusher {
  repo: string;
  branch: string;
  login: string;
}

export async function recordBranchPusher(db: Queryable, p: BranchPusher): Promise<void> {
  await db.query("insert into branch_pushers (repo, branch, login) values ($1, $2, $3) on conflict do nothing", [p.repo, p.branch, p.login]);
}

/** Everyone who ever pushed to the branch, lower-cased. */
export async function branchPushersOf(db: Queryable, repo: string, branch: string): Promise<string[]> {
  const { rows } = await db.query<{ login: string }>("select login from branch_pushers where repo = $1 and branch = $2 order by login", [repo, branch]);
  return rows.map((r) => r.login.toLowerCase());
}
