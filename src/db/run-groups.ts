import type { Unplanned } from "../projects/unplanned.js";
import type { PolicyConfig } from "../settings/repo-config.js";
import { inTransaction, type Pool, type Queryable } from "./pool.js";
import { groupRunKeys, insertRuns, type NewRun, type RunKey } from "./runs.js";

export interface RunGroup {
  id: number;
  kind: "plan" | "apply" | "queue";
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
  /** The PR's head branch when it is in this repository (its pushers never approve); null for a fork's. */
  head_ref: string | null;
  /** Changed projects this plan left out and no plan of the head covered when it was made: the checks wait for them. */
  unplanned: Unplanned[];
  /** The PR's labels when it was planned (rules read pull_request.labels). */
  labels: string[];
  /** The branch the PR merges into (rules read pull_request.base); null when not known. */
  pull_base: string | null;
  /** What an apply or a merge queue verification decided; set with its final state, reported from it. */
  outcome: GroupOutcome | null;
}

/** Why an apply did not (or could not) apply: each has its wording in templates/apply-denied.hbs. */
export type RefusalCode =
  | "never-planned"
  | "head-not-planned"
  | "plan-pending"
  | "plan-failed"
  | "not-approved"
  | "discarded"
  | "already-applied"
  | "no-changes"
  | "no-command-projects"
  | "prepare-failed"
  | "fresh-plan-failed"
  | "fingerprint-mismatch"
  | "branch-not-applied"
  | "unplanned"
  | "queue-unaccounted"
  | "system-error";

export interface Refusal {
  code: RefusalCode;
  /** Facts the wording shows: missing approvals, mismatched fingerprints, an error message. */
  missing?: { project: string; have: number; needed: number }[];
  mismatches?: { project: string; approved: string; fresh: string }[];
  message?: string;
  /** queue-unaccounted: projects changed by commits ahead in the merge queue that no verified plan accounts for. */
  unaccounted?: { project: string; commit: string; pull?: number }[];
  /** branch-not-applied: the default branch, whose apply_branches did not list the merge's base (in message). */
  branch?: string;
  /** The tail of terraform's (or synth's) output that explains a failure, masked. */
  output?: string;
  /** A refusal that leaves nothing undone (already applied, no changes): neutral, not failure. */
  neutral?: boolean;
}

export type GroupOutcome =
  | { mode: ApplyMode; result: "applied" | "failed" | "interrupted" }
  | ({ mode: ApplyMode; result: "refused" } & Refusal)
  | { mode: "queue"; result: "verified" }
  | ({ mode: "queue"; result: "refused" } & Refusal);

/** How an apply was asked for: a merge, a `/apply` comment. */
export type ApplyMode = "merge" | "command";

export type NewRunGroup = Pick<RunGroup, "kind" | "trigger_id" | "installation_id" | "repo" | "pull_number" | "sha" | "author"> &
  Partial<Pick<RunGroup, "policies" | "base_ref" | "base_sha" | "config_from_file" | "rule_changes" | "unplanned" | "head_ref" | "labels" | "pull_base">>;

/** Creates the group of runs for one trigger; a repeated trigger returns the existing group. Its runs come as keys (groupRunKeys). */
export async function createRunGroup(
  db: Queryable,
  group: NewRunGroup,
  runs: NewRun[],
): Promise<{ group: RunGroup; runs: RunKey[]; created: boolean }> {
  const inserted = await db.query<RunGroup>(
    `insert into run_groups (kind, trigger_id, installation_id, repo, pull_number, sha, author, policies, base_ref, base_sha, config_from_file, rule_changes, unplanned, head_ref, labels, pull_base)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
     on conflict (trigger_id) do nothing returning *`,
    [
      group.kind, group.trigger_id, group.installation_id, group.repo, group.pull_number, group.sha, group.author, JSON.stringify(group.policies ?? []),
      group.base_ref ?? null, group.base_sha ?? null, group.config_from_file ?? false, JSON.stringify(group.rule_changes ?? []),
      JSON.stringify(group.unplanned ?? []), group.head_ref ?? null, JSON.stringify(group.labels ?? []), group.pull_base ?? null,
    ],
  );
  const created = inserted.rowCount === 1;
  const row = created ? inserted.rows[0]! : (await db.query<RunGroup>("select * from run_groups where trigger_id = $1", [group.trigger_id])).rows[0]!;
  if (created) await insertRuns(db, row, runs);
  return { group: row, runs: await groupRunKeys(db, row.id), created };
}

export async function setCheckRunId(db: Queryable, groupId: number, checkRunId: number): Promise<void> {
  await db.query("update run_groups set check_run_id = $2 where id = $1", [groupId, checkRunId]);
}

/**
 * Runs `open` with the group's row locked, when the group is neither reported
 * nor given a check run yet; stores the check run it returns. The report's
 * claim waits on the same row lock, so a group gets either an in-progress
 * check run that the report completes, or none and the report creates it.
 */
export async function openCheckRunUnlessReported(db: Pool, groupId: number, open: () => Promise<number>): Promise<boolean> {
  return inTransaction(db, async (tx) => {
    const { rows } = await tx.query<{ open: boolean }>(
      "select (reported_at is null and check_run_id is null) as open from run_groups where id = $1 for update",
      [groupId],
    );
    if (!rows[0]?.open) return false;
    await setCheckRunId(tx, groupId, await open());
    return true;
  });
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
 * Claims the right to report a group once every run in it has finished;
 * returns the group to the one caller that gets it (the row lock on
 * run_groups serialises them), undefined to every other.
 */
export async function claimGroupReport(db: Queryable, groupId: number): Promise<{ group: RunGroup; superseded: boolean } | undefined> {
  const { rows } = await db.query<RunGroup & { superseded: boolean }>(
    `update run_groups g set reported_at = now()
      where g.id = $1 and g.reported_at is null
        and not exists (select 1 from runs r where r.group_id = g.id and r.status in ('queued', 'running'))
      returning g.*,
        (g.kind = 'plan' and g.pull_number is not null and exists (
          select 1 from run_groups n where n.kind = 'plan' and n.repo = g.repo and n.pull_number = g.pull_number and n.id > g.id)) as superseded`,
    [groupId],
  );
  if (!rows[0]) return undefined;
  const { superseded, ...group } = rows[0];
  return { group, superseded };
}

/** Gives back a report claim after GitHub refused the report, so the job's retry reports instead. */
export async function releaseGroupReport(db: Queryable, groupId: number): Promise<void> {
  await db.query("update run_groups set reported_at = null where id = $1", [groupId]);
}

/** Whether a later plan of the same pull request at another commit exists: the PR moved on, and this group's pending writes are dropped. */
export async function movedOn(db: Queryable, group: Pick<RunGroup, "id" | "repo" | "pull_number" | "sha">): Promise<boolean> {
  if (group.pull_number === null) return false;
  const { rowCount } = await db.query("select 1 from run_groups where kind = 'plan' and repo = $1 and pull_number = $2 and id > $3 and sha <> $4 limit 1", [group.repo, group.pull_number, group.id, group.sha]);
  return rowCount === 1;
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

/** Records a group's outcome, once: false when another attempt recorded one first. */
export async function setOutcome(db: Queryable, groupId: number, outcome: GroupOutcome): Promise<boolean> {
  const { rowCount } = await db.query("update run_groups set outcome = $2 where id = $1 and outcome is null", [groupId, JSON.stringify(outcome)]);
  return rowCount === 1;
}

/** Whether any plan of the PR was ever made (at any head). */
export async function pullWasPlanned(db: Queryable, repo: string, pullNumber: number): Promise<boolean> {
  return (await db.query("select 1 from run_groups where kind = 'plan' and repo = $1 and pull_number = $2 limit 1", [repo, pullNumber])).rowCount === 1;
}

/** The newest verified merge queue plan of a PR at `sha` (a queue commit that became the merge commit). */
/** The latest merge queue verification of a queue commit, whichever PR it was for (undefined: none began yet). */
export async function queueGroupAt(db: Queryable, repo: string, sha: string): Promise<RunGroup | undefined> {
  const { rows } = await db.query<RunGroup>("select * from run_groups where kind = 'queue' and repo = $1 and sha = $2 order by id desc limit 1", [repo, sha]);
  return rows[0];
}

export async function verifiedQueueGroup(db: Queryable, repo: string, pullNumber: number, sha: string): Promise<RunGroup | undefined> {
  const { rows } = await db.query<RunGroup>(
    "select * from run_groups where kind = 'queue' and repo = $1 and pull_number = $2 and sha = $3 and outcome->>'result' = 'verified' order by id desc limit 1",
    [repo, pullNumber, sha],
  );
  return rows[0];
}
