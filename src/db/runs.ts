import type { PlanChanges } from "../plans/changes.js";
import type { PolicyViolation } from "../plans/policy.js";
import type { RunPolicy } from "../plans/policy-judgement.js";
import type { ProjectConfig } from "../settings/repo-config.js";
import type { ProjectRules } from "../settings/rules.js";
import type { Queryable } from "./pool.js";

export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "interrupted" | "denied" | "skipped";

export interface Run {
  id: number;
  group_id: number;
  parent_run_id: number | null;
  kind: "plan" | "apply";
  fingerprint: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  repo: string;
  pull_number: number | null;
  sha: string;
  project: string;
  dir: string;
  engine: string;
  workspace: string;
  /** The project as the PR's file (or discovery) describes it. */
  config: ProjectConfig;
  /** The effective rules it was planned under; null for runs older than the trust model. */
  rules: ProjectRules | null;
  status: RunStatus;
  summary: PlanChanges["counts"] | null;
  output: string | null;
  error: RunFailure | null;
  /** What the policies found in its plan, and what owners overrode (plans/policy-judgement.ts); null before any plan or policy. */
  policy: RunPolicy | null;
  /** The earlier commit whose plan this run reused (its inputs did not change since); null for a plan made afresh. */
  reused_from: string | null;
}

/** Why a run failed, stored as JSON in runs.error. */
export interface RunFailure {
  /** The program that failed, as wording names it (its engine's tool); absent for plangate's own failures and older rows. */
  tool?: string;
  stage: string;
  message: string;
  timedOut?: boolean;
  /** The failing program's output; kept in runs.output, not in runs.error. */
  output?: string;
  violations?: PolicyViolation[];
}

export interface NewRun {
  project: string;
  dir: string;
  engine: string;
  workspace: string;
  config: ProjectConfig;
  rules?: ProjectRules;
}

/** The run of one cdktf stack, created by its program's run once synth has listed the stacks. */
export async function createStackRun(db: Queryable, parent: Run, stack: string): Promise<Run> {
  const { rows } = await db.query<Run>(
    `insert into runs (group_id, parent_run_id, kind, repo, pull_number, sha, project, dir, engine, workspace, config, rules, status, started_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'running', now())
     on conflict (group_id, project, workspace) do update set status = 'running', started_at = now()
     returning *`,
    [parent.group_id, parent.id, parent.kind, parent.repo, parent.pull_number, parent.sha, `${parent.project}/${stack}`, parent.dir, parent.engine, parent.workspace, JSON.stringify(parent.config), parent.rules ? JSON.stringify(parent.rules) : null],
  );
  return rows[0]!;
}

export async function runsById(db: Queryable, ids: number[]): Promise<Run[]> {
  return (await db.query<Run>("select * from runs where id = any($1)", [ids])).rows;
}

export async function getRun(db: Queryable, id: number): Promise<Run | undefined> {
  return (await db.query<Run>("select * from runs where id = $1", [id])).rows[0];
}

/** The runs of `ids` that exist, in the order of `ids` (one read for a batch's runs). */
export async function getRuns(db: Queryable, ids: number[]): Promise<Run[]> {
  const { rows } = await db.query<Run>("select * from runs where id = any($1::bigint[])", [ids]);
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  return ids.map((id) => byId.get(id)).filter((r): r is Run => r !== undefined);
}

/** The columns of a run group that its runs are keyed by (run-groups.ts holds the whole row). */
export interface GroupKey {
  id: number;
  kind: string;
  repo: string;
  pull_number: number | null;
  sha: string;
}

/**
 * What is planned at a PR's head: for every (project, workspace), its latest
 * project run among all the plans of that commit (autoplan and /plan -p alike).
 */
export async function headRuns(db: Queryable, group: GroupKey): Promise<Run[]> {
  const { rows } = await db.query<Run>(
    `select distinct on (r.project, r.workspace) r.* from runs r join run_groups g on g.id = r.group_id
      where g.kind = 'plan' and g.repo = $1 and g.pull_number = $2 and g.sha = $3 and g.id <= $4
        and (r.status = 'failed' or not exists (select 1 from runs c where c.parent_run_id = r.id))
      order by r.project, r.workspace, r.id desc`,
    [group.repo, group.pull_number, group.sha, group.id],
  );
  return rows;
}

/** The projects (name NUL workspace) some plan of the PR's head has planned or is planning. */
export async function plannedOnHead(db: Queryable, repo: string, pullNumber: number, sha: string): Promise<Set<string>> {
  const { rows } = await db.query<{ project: string; workspace: string }>(
    `select distinct r.project, r.workspace from runs r join run_groups g on g.id = r.group_id
      where g.kind = 'plan' and g.repo = $1 and g.pull_number = $2 and g.sha = $3`,
    [repo, pullNumber, sha],
  );
  return new Set(rows.map((r) => `${r.project}\0${r.workspace}`));
}

/** Every column of runs but the output: a plan's output is megabytes for thousands of resources. */
export const COLUMNS_BUT_OUTPUT = "id, group_id, parent_run_id, kind, fingerprint, repo, pull_number, sha, project, dir, engine, workspace, config, rules, status, summary, error, policy, reused_from, created_at, started_at, finished_at";

/**
 * The runs that stand for projects: a cdktf program's run is replaced by its stacks' runs,
 * unless it failed after some were planned (a timeout): then it stands beside them, failed.
 * `output: "failed"` reads the output of runs that failed only (what the plan comment shows: a failure's output).
 */
export async function leafRuns(db: Queryable, groupId: number, output: "all" | "failed" = "all"): Promise<Run[]> {
  const all =
    output === "all"
      ? await groupRuns(db, groupId)
      : (await db.query<Run>(`select ${COLUMNS_BUT_OUTPUT}, case when error is not null then output end as output from runs where group_id = $1 order by project, workspace`, [groupId])).rows;
  const parents = new Set(all.map((r) => r.parent_run_id).filter((id) => id !== null));
  // A program whose stacks were planned stands for them; one that failed midway (a timeout) stands too, failed.
  return all.filter((r) => !parents.has(r.id) || r.status === "failed");
}

export async function groupRuns(db: Queryable, groupId: number): Promise<Run[]> {
  return (await db.query<Run>("select * from runs where group_id = $1 order by project, workspace", [groupId])).rows;
}

/** A run as a new group's booking, a progress check and a notification need it: which project, and where it stands. */
export type RunKey = Pick<Run, "id" | "group_id" | "kind" | "repo" | "pull_number" | "sha" | "project" | "workspace" | "status">;

/**
 * The group's runs in groupRuns' order, without their config, rules and
 * output: reading and parsing those for thousands of runs took as long as
 * writing the runs.
 */
export async function groupRunKeys(db: Queryable, groupId: number): Promise<RunKey[]> {
  return (await db.query<RunKey>("select id, group_id, kind, repo, pull_number, sha, project, workspace, status from runs where group_id = $1 order by project, workspace", [groupId])).rows;
}

/** How many of the group's runs are still queued or running. */
export async function unfinishedRunCount(db: Queryable, groupId: number): Promise<number> {
  const { rows } = await db.query<{ count: string }>("select count(*) from runs where group_id = $1 and status in ('queued', 'running')", [groupId]);
  return Number(rows[0]?.count ?? 0);
}

/**
 * Marks a queued run as running ("started"). A run already running is taken
 * over ("resumed") only when `takeOver` says so (a retry of the job that
 * began it, or a run left behind); otherwise another job is planning it, and
 * neither that nor a finished run is started. `was`: its status before.
 */
export async function startRun(db: Queryable, id: number, opts: { takeOver: boolean; at?: Date }): Promise<{ how?: "started" | "resumed"; was?: string }> {
  const { rows } = await db.query<{ was: string; updated: boolean }>(
    `with o as (select id, status from runs where id = $1 for update),
          u as (update runs r set status = 'running', started_at = coalesce($3::timestamptz, now()) from o
                 where r.id = o.id and (o.status = 'queued' or (o.status = 'running' and $2)) returning r.id)
     select o.status as was, exists (select 1 from u) as updated from o`,
    [id, opts.takeOver, opts.at ?? null],
  );
  const row = rows[0];
  if (!row?.updated) return { was: row?.was };
  return { how: row.was === "queued" ? "started" : "resumed", was: row.was };
}

export async function finishRun(
  db: Queryable,
  id: number,
  result: { status: "succeeded" | "failed"; summary?: PlanChanges["counts"]; output?: string; error?: RunFailure; policy?: RunPolicy },
): Promise<void> {
  await db.query("update runs set status = $2, summary = $3, output = coalesce($4, output), error = $5, policy = $6, finished_at = now() where id = $1", [
    id,
    result.status,
    result.summary ? JSON.stringify(result.summary) : null,
    result.output ?? null,
    result.error ? JSON.stringify(result.error) : null,
    result.policy?.outcomes.length ? JSON.stringify(result.policy) : null,
  ]);
}

/**
 * Stores a run's policy outcomes after an /override: the run passes when
 * nothing blocks any more (`passes`), keeping its plan; it never fails here.
 */
export async function overrideRunPolicy(db: Queryable, id: number, policy: RunPolicy, passes: boolean): Promise<void> {
  await db.query(
    `update runs set policy = $2,
       status = case when $3 and status = 'failed' and error->>'stage' = 'policy' then 'succeeded' else status end,
       error = case when $3 and status = 'failed' and error->>'stage' = 'policy' then null else error end
     where id = $1`,
    [id, JSON.stringify(policy), passes],
  );
}

/** A finished run's output, stored after the fact (a successful plan's: once its comment is posted). */
export async function storeRunOutput(db: Queryable, id: number, output: string): Promise<void> {
  await db.query("update runs set output = $2 where id = $1", [id, output]);
}

/** The group's runs still queued end as `status` (denied: nothing applied; skipped: an earlier project failed). */
export async function closeQueuedRuns(db: Queryable, groupId: number, status: "denied" | "skipped"): Promise<Run[]> {
  return (await db.query<Run>("update runs set status = $2, finished_at = now() where group_id = $1 and status = 'queued' returning *", [groupId, status])).rows;
}

/**
 * A queued plan run whose pull request has moved on (a later plan of the PR
 * at another commit exists) ends as skipped instead of being planned: its
 * worker slot goes to the new head. Returns whether it was skipped.
 */
/** Whether a newer head of the group's PR has a plan group of its own: the group's queued runs are skipped (skipSupersededRun), not planned. */
export async function groupSuperseded(db: Queryable, groupId: number): Promise<boolean> {
  const { rows } = await db.query(
    `select 1 from run_groups g where g.id = $1 and g.kind = 'plan' and g.pull_number is not null
        and exists (select 1 from run_groups n where n.kind = 'plan' and n.repo = g.repo and n.pull_number = g.pull_number and n.id > g.id and n.sha <> g.sha)`,
    [groupId],
  );
  return rows.length > 0;
}

export async function skipSupersededRun(db: Queryable, id: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `update runs r set status = 'skipped', finished_at = now()
      from run_groups g
      where r.id = $1 and r.status = 'queued' and r.kind = 'plan' and g.id = r.group_id and g.kind = 'plan' and g.pull_number is not null
        and exists (select 1 from run_groups n where n.kind = 'plan' and n.repo = g.repo and n.pull_number = g.pull_number and n.id > g.id and n.sha <> g.sha)`,
    [id],
  );
  return rowCount === 1;
}

/** An apply run starts, recording the fingerprint of what it applies. */
export async function startApplyRun(db: Queryable, id: number, fingerprint: string): Promise<void> {
  await db.query("update runs set status = 'running', started_at = now(), fingerprint = $2 where id = $1", [id, fingerprint]);
}

/** The group's runs a dead worker left running end as interrupted (never resumed); returns them. */
export async function interruptRunning(db: Queryable, groupId: number): Promise<Run[]> {
  return (await db.query<Run>("update runs set status = 'interrupted', finished_at = now() where group_id = $1 and status = 'running' returning *", [groupId])).rows;
}

/** The project runs of a new group, queued. */
export async function insertRuns(db: Queryable, group: GroupKey, runs: NewRun[]): Promise<void> {
  if (!runs.length) return;
  const records = runs.map((r, i) => ({ n: i, project: r.project, dir: r.dir, engine: r.engine, workspace: r.workspace, config: r.config, rules: r.rules ?? null }));
  // One statement for the group's runs, in the order given.
  await db.query(
    `insert into runs (group_id, kind, repo, pull_number, sha, project, dir, engine, workspace, config, rules)
       select $1, $2, $3, $4, $5, project, dir, engine, workspace, config, rules
         from jsonb_to_recordset($6::jsonb) as r(n int, project text, dir text, engine text, workspace text, config jsonb, rules jsonb)
        order by n`,
    [group.id, group.kind === "apply" ? "apply" : "plan", group.repo, group.pull_number, group.sha, JSON.stringify(records)],
  );
}
