import type { PlanChanges } from "../plans/changes.js";
import type { PolicyViolation } from "../plans/policy.js";
import type { PolicyConfig, ProjectConfig } from "../settings/repo-config.js";
import type { ProjectRules } from "../settings/rules.js";
import type { Queryable } from "./pool.js";

export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "interrupted";

export interface RunGroup {
  id: number;
  kind: "plan" | "apply";
  trigger_id: string;
  installation_id: number;
  repo: string;
  pull_number: number | null;
  sha: string;
  author: string | null;
  check_run_id: number | null;
  approval_check_run_id: number | null;
  approval_met: boolean | null;
  reported_at: Date | null;
  /** The effective policies (the base branch's, plus any the PR's file adds). */
  policies: PolicyConfig[];
  base_ref: string | null;
  base_sha: string | null;
  /** Whether the PR's own .plangate.yml existed (only then may it tighten rules). */
  config_from_file: boolean;
  /** Rule changes the PR's file makes, which take effect once merged. */
  rule_changes: string[];
}

export interface Run {
  id: number;
  group_id: number;
  parent_run_id: number | null;
  kind: "plan" | "apply";
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
}

/** Why a run failed, stored as JSON in runs.error. */
export interface RunFailure {
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

/** Creates the group of runs for one trigger; a repeated trigger returns the existing group. */
export async function createRunGroup(
  db: Queryable,
  group: Omit<RunGroup, "id" | "check_run_id" | "approval_check_run_id" | "approval_met" | "reported_at" | "policies" | "base_ref" | "base_sha" | "config_from_file" | "rule_changes"> &
    Partial<Pick<RunGroup, "policies" | "base_ref" | "base_sha" | "config_from_file" | "rule_changes">>,
  runs: NewRun[],
): Promise<{ group: RunGroup; runs: Run[]; created: boolean }> {
  const inserted = await db.query<RunGroup>(
    `insert into run_groups (kind, trigger_id, installation_id, repo, pull_number, sha, author, policies, base_ref, base_sha, config_from_file, rule_changes)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     on conflict (trigger_id) do nothing returning *`,
    [
      group.kind, group.trigger_id, group.installation_id, group.repo, group.pull_number, group.sha, group.author, JSON.stringify(group.policies ?? []),
      group.base_ref ?? null, group.base_sha ?? null, group.config_from_file ?? false, JSON.stringify(group.rule_changes ?? []),
    ],
  );
  const created = inserted.rowCount === 1;
  const row = created ? inserted.rows[0]! : (await db.query<RunGroup>("select * from run_groups where trigger_id = $1", [group.trigger_id])).rows[0]!;
  if (created) {
    for (const r of runs) {
      await db.query(
        `insert into runs (group_id, kind, repo, pull_number, sha, project, dir, engine, workspace, config, rules) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [row.id, row.kind, row.repo, row.pull_number, row.sha, r.project, r.dir, r.engine, r.workspace, JSON.stringify(r.config), r.rules ? JSON.stringify(r.rules) : null],
      );
    }
  }
  return { group: row, runs: await groupRuns(db, row.id), created };
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

export async function setCheckRunId(db: Queryable, groupId: number, checkRunId: number): Promise<void> {
  await db.query("update run_groups set check_run_id = $2 where id = $1", [groupId, checkRunId]);
}

export async function runsById(db: Queryable, ids: number[]): Promise<Run[]> {
  return (await db.query<Run>("select * from runs where id = any($1)", [ids])).rows;
}

export async function getRun(db: Queryable, id: number): Promise<Run | undefined> {
  return (await db.query<Run>("select * from runs where id = $1", [id])).rows[0];
}

export async function getGroupOrUndefined(db: Queryable, id: number): Promise<RunGroup | undefined> {
  return (await db.query<RunGroup>("select * from run_groups where id = $1", [id])).rows[0];
}

export async function getGroup(db: Queryable, id: number): Promise<RunGroup> {
  return (await db.query<RunGroup>("select * from run_groups where id = $1", [id])).rows[0]!;
}

/** The latest plan of a PR at `sha`: the one approvals and applies refer to. */
export async function latestPlanGroup(db: Queryable, repo: string, pullNumber: number, sha: string): Promise<RunGroup | undefined> {
  const { rows } = await db.query<RunGroup>(
    "select * from run_groups where kind = 'plan' and repo = $1 and pull_number = $2 and sha = $3 order by id desc limit 1",
    [repo, pullNumber, sha],
  );
  return rows[0];
}

/**
 * What is planned at a PR's head: for every (project, workspace), its latest
 * project run among all the plans of that commit (autoplan and /plan -p alike).
 */
export async function headRuns(db: Queryable, group: RunGroup): Promise<Run[]> {
  const { rows } = await db.query<Run>(
    `select distinct on (r.project, r.workspace) r.* from runs r join run_groups g on g.id = r.group_id
      where g.kind = 'plan' and g.repo = $1 and g.pull_number = $2 and g.sha = $3 and g.id <= $4
        and not exists (select 1 from runs c where c.parent_run_id = r.id)
      order by r.project, r.workspace, r.id desc`,
    [group.repo, group.pull_number, group.sha, group.id],
  );
  return rows;
}

/** The runs that stand for projects: a cdktf program's run is replaced by its stacks' runs. */
export async function leafRuns(db: Queryable, groupId: number): Promise<Run[]> {
  const all = await groupRuns(db, groupId);
  const parents = new Set(all.map((r) => r.parent_run_id).filter((id) => id !== null));
  return all.filter((r) => !parents.has(r.id));
}

export async function groupRuns(db: Queryable, groupId: number): Promise<Run[]> {
  return (await db.query<Run>("select * from runs where group_id = $1 order by project, workspace", [groupId])).rows;
}

/** Marks a queued (or retried) run as running; false when it already finished. */
export async function startRun(db: Queryable, id: number): Promise<boolean> {
  const { rowCount } = await db.query(
    "update runs set status = 'running', started_at = now() where id = $1 and status in ('queued', 'running')",
    [id],
  );
  return rowCount === 1;
}

export async function finishRun(
  db: Queryable,
  id: number,
  result: { status: "succeeded" | "failed"; summary?: PlanChanges["counts"]; output: string; error?: RunFailure },
): Promise<void> {
  await db.query("update runs set status = $2, summary = $3, output = $4, error = $5, finished_at = now() where id = $1", [
    id,
    result.status,
    result.summary ? JSON.stringify(result.summary) : null,
    result.output,
    result.error ? JSON.stringify(result.error) : null,
  ]);
}

/**
 * Claims the right to report a group once every run in it has finished.
 * Exactly one caller gets true: the row lock on run_groups serialises them.
 */
export async function claimGroupReport(db: Queryable, groupId: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `update run_groups g set reported_at = now()
      where g.id = $1 and g.reported_at is null
        and not exists (select 1 from runs r where r.group_id = g.id and r.status in ('queued', 'running'))`,
    [groupId],
  );
  return rowCount === 1;
}

/** Gives back a report claim after GitHub refused the report, so the job's retry reports instead. */
export async function releaseGroupReport(db: Queryable, groupId: number): Promise<void> {
  await db.query("update run_groups set reported_at = null where id = $1", [groupId]);
}

/** Whether the trigger (a delivery) already made a run group: its job is a retry. */
export async function hasRunGroup(db: Queryable, triggerId: string): Promise<boolean> {
  return (await db.query("select 1 from run_groups where trigger_id = $1", [triggerId])).rowCount === 1;
}

/**
 * Stores the group's `plangate/approval` state; returns whether it was met
 * before (null: never evaluated), read under the row's lock so that one
 * change is seen once.
 */
export async function recordApprovalState(db: Queryable, groupId: number, checkRunId: number, met: boolean): Promise<boolean | null> {
  const { rows } = await db.query<{ approval_met: boolean | null }>("select approval_met from run_groups where id = $1 for update", [groupId]);
  await db.query("update run_groups set approval_check_run_id = $2, approval_met = $3 where id = $1", [groupId, checkRunId, met]);
  return rows[0]?.approval_met ?? null;
}

/** Apply runs of a commit that were queued or running end as denied. */
export async function denyOpenApplies(db: Queryable, repo: string, sha: string): Promise<void> {
  await db.query("update runs set status = 'denied', finished_at = now() where kind = 'apply' and repo = $1 and sha = $2 and status in ('queued', 'running')", [repo, sha]);
}

/** An apply run starts, recording the fingerprint of what it applies. */
export async function startApplyRun(db: Queryable, id: number, fingerprint: string): Promise<void> {
  await db.query("update runs set status = 'running', started_at = now(), fingerprint = $2 where id = $1", [id, fingerprint]);
}

/** The group's runs still queued fail with `error` (skipped after an earlier failure). */
export async function failQueuedRuns(db: Queryable, groupId: number, error: RunFailure): Promise<void> {
  await db.query("update runs set status = 'failed', finished_at = now(), error = $2 where group_id = $1 and status = 'queued'", [groupId, JSON.stringify(error)]);
}

/** A run whose worker died midway: never resumed. */
export async function markInterrupted(db: Queryable, id: number): Promise<void> {
  await db.query("update runs set status = 'interrupted', finished_at = now() where id = $1", [id]);
}
