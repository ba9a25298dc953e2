import type { Queryable } from "./pool.js";

export interface DriftCheck {
  repo: string;
  project: string;
  workspace: string;
  checked_at: Date;
  sha: string;
  status: "clean" | "drifted" | "failed";
  issue_number: number | null;
}

/** Remembers that a repository's config asks for drift checks. */
export async function registerDriftRepo(db: Queryable, repo: string, installationId: number): Promise<void> {
  await db.query("insert into drift_repos (repo, installation_id) values ($1, $2) on conflict (repo) do update set installation_id = $2, seen_at = now()", [repo, installationId]);
}

export async function driftRepos(db: Queryable): Promise<{ repo: string; installation_id: number }[]> {
  return (await db.query("select repo, installation_id from drift_repos order by repo")).rows;
}

/** The installation a repository's deliveries came from (for `plangate drift OWNER/REPO`). */
export async function installationOf(db: Queryable, repo: string): Promise<number | undefined> {
  const { rows } = await db.query<{ installation_id: number }>(
    "select installation_id from webhook_deliveries where repo = $1 and installation_id is not null order by received_at desc limit 1",
    [repo],
  );
  return rows[0]?.installation_id;
}

export async function lastDriftCheck(db: Queryable, repo: string, project: string, workspace: string): Promise<DriftCheck | undefined> {
  return (await db.query<DriftCheck>("select * from drift_checks where repo = $1 and project = $2 and workspace = $3", [repo, project, workspace])).rows[0];
}

/** Records a check; returns the status it replaces (undefined on the first check). */
export async function recordDriftCheck(db: Queryable, check: Omit<DriftCheck, "checked_at">): Promise<DriftCheck["status"] | undefined> {
  const before = await lastDriftCheck(db, check.repo, check.project, check.workspace);
  await db.query(
    `insert into drift_checks (repo, project, workspace, checked_at, sha, status, issue_number) values ($1, $2, $3, now(), $4, $5, $6)
     on conflict (repo, project, workspace) do update set checked_at = now(), sha = $4, status = $5, issue_number = $6`,
    [check.repo, check.project, check.workspace, check.sha, check.status, check.issue_number],
  );
  return before?.status;
}

/** The merge commit of the project's last successful apply on merge: what a revert would start from. */
export async function lastAppliedSha(db: Queryable, repo: string, project: string, workspace: string): Promise<string | undefined> {
  const { rows } = await db.query<{ sha: string }>(
    "select sha from runs where kind = 'apply' and status = 'succeeded' and repo = $1 and project = $2 and workspace = $3 order by finished_at desc limit 1",
    [repo, project, workspace],
  );
  return rows[0]?.sha;
}
