import type { LockKey } from "./locks.js";
import type { Queryable } from "./pool.js";

/**
 * The dashboard's reads. Every query takes the repositories the user can read
 * (lower-cased owner/name) and returns rows of those repositories only.
 */

export interface RunFilter {
  repo?: string;
  pullNumber?: number;
  project?: string;
  outcome?: string;
}

export interface RunRow {
  id: number;
  kind: string;
  repo: string;
  pull_number: number | null;
  sha: string;
  created_at: Date;
  outcome: string;
  projects: { project: string; workspace: string; status: string }[];
}

const LIMIT = 200;

/**
 * Recent run groups, newest first. A group's outcome is its recorded outcome
 * (applies: applied, refused, …) or else what its runs say: failed when one
 * failed, running while one is queued or running, else succeeded.
 */
export async function recentRuns(db: Queryable, repos: string[], filter: RunFilter): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `with g as (
       select g.id, g.kind, g.repo, g.pull_number, g.sha, g.created_at,
              coalesce(g.outcome->>'result',
                case when bool_or(r.status = 'failed') then 'failed'
                     when bool_or(r.status in ('queued', 'running')) then 'running'
                     when bool_or(r.status = 'interrupted') then 'interrupted'
                     else 'succeeded' end) as outcome,
              coalesce(json_agg(json_build_object('project', r.project, 'workspace', r.workspace, 'status', r.status) order by r.project, r.workspace)
                filter (where r.id is not null), '[]') as projects
         from run_groups g left join runs r on r.group_id = g.id
        where lower(g.repo) = any($1::text[])
          and ($2::text is null or lower(g.repo) = lower($2))
          and ($3::int is null or g.pull_number = $3)
          and ($4::text is null or exists (select 1 from runs x where x.group_id = g.id and x.project = $4))
        group by g.id
     )
     select * from g where $5::text is null or outcome = $5 order by id desc limit ${LIMIT}`,
    [repos, filter.repo ?? null, filter.pullNumber ?? null, filter.project ?? null, filter.outcome ?? null],
  );
  return rows;
}

export interface LockRow extends LockKey {
  pull_number: number;
  acquired_at: Date;
}

export async function currentLocks(db: Queryable, repos: string[]): Promise<LockRow[]> {
  const { rows } = await db.query<LockRow>(
    "select repo, project, workspace, pull_number, acquired_at from locks where lower(repo) = any($1::text[]) order by repo, project, workspace",
    [repos],
  );
  return rows;
}

/** Releases one lock; returns the pull request that held it (undefined when nobody did). */
export async function releaseLock(tx: Queryable, key: LockKey): Promise<number | undefined> {
  const { rows } = await tx.query<{ pull_number: number }>(
    "delete from locks where repo = $1 and project = $2 and workspace = $3 returning pull_number",
    [key.repo, key.project, key.workspace],
  );
  return rows[0]?.pull_number;
}

export interface AuditFilter {
  repo?: string;
  action?: string;
}

export interface AuditRow {
  id: number;
  /** The event's hash: names it (as `plangate audit export` does) without the global id, which would tell how busy other repositories are. */
  hash: string;
  created_at: Date;
  action: string;
  actor: string | null;
  repo: string;
  pull_number: number | null;
  project: string | null;
  workspace: string | null;
  sha: string | null;
  details: Record<string, unknown>;
}

/** The newest audit events of the user's repositories (events of no repository are not shown). */
export async function auditEvents(db: Queryable, repos: string[], filter: AuditFilter): Promise<AuditRow[]> {
  const { rows } = await db.query<AuditRow>(
    `select id, hash, created_at, action, actor, repo, pull_number, project, workspace, sha, details from audit_events
      where lower(repo) = any($1::text[]) and ($2::text is null or lower(repo) = lower($2)) and ($3::text is null or action = $3)
      order by id desc limit ${LIMIT}`,
    [repos, filter.repo ?? null, filter.action ?? null],
  );
  return rows;
}

/** How many events of the user's repositories there are, and how many of them lie within the verified part of the chain (ids up to `verifiedThrough`). */
export async function auditCounts(db: Queryable, repos: string[], verifiedThrough: number): Promise<{ total: number; verified: number }> {
  const { rows } = await db.query<{ total: number; verified: number }>(
    "select count(*)::int as total, (count(*) filter (where id <= $2))::int as verified from audit_events where lower(repo) = any($1::text[])",
    [repos, verifiedThrough],
  );
  return rows[0]!;
}

export interface DriftRow {
  repo: string;
  project: string;
  workspace: string;
  checked_at: Date;
  sha: string;
  status: string;
  issue_number: number | null;
}

export async function driftStatus(db: Queryable, repos: string[]): Promise<DriftRow[]> {
  const { rows } = await db.query<DriftRow>("select * from drift_checks where lower(repo) = any($1::text[]) order by repo, project, workspace", [repos]);
  return rows;
}
