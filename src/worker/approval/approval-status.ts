import { loadHeadPlans, type HeadPlans } from "../../db/head-plans.js";
import { branchPushersOf, pushersOf } from "../../db/pull-pushers.js";
import type { RunGroup } from "../../db/run-groups.js";
import type { GitHub } from "../../github/github.js";
import { approvalsOn, evaluateApprovals, type ApprovalResult, type ApprovalRule } from "../../plans/approval.js";
import { evaluatePolicies } from "../../plans/policy.js";
import type { BaseRules } from "../../settings/rules.js";
import { rulesOf } from "../base-rules.js";
import type { WorkerDeps } from "../deps.js";

export interface ApprovalStatus extends ApprovalResult {
  failed: boolean;
  /** Reviewers who approved but pushed to the PR or authored a commit on it: shown as not counted. */
  selfApproved: string[];
  /** Changed projects no plan of the head covers: nothing is approved until they are planned. */
  unplanned: RunGroup["unplanned"];
  /** Some project of the head is still being planned. */
  pending: boolean;
}

/** Permissions whose holders' approvals count (evaluated when the rule is, never cached across evaluations). */
const APPROVER_PERMISSIONS = new Set(["admin", "maintain", "write"]);

/**
 * Evaluates a plan group's approval requirements against the PR's reviews now,
 * under `base`'s rules (the base branch as it stands before the PR lands).
 * `head`: the head's runs and plans, when the caller read them already.
 */
export async function approvalStatus(deps: WorkerDeps, gh: GitHub, group: RunGroup, base: BaseRules, head?: HeadPlans): Promise<ApprovalStatus> {
  const [owner, name] = group.repo.split("/") as [string, string];
  const { runs, plans } = head ?? (await loadHeadPlans(deps.pool, group));
  const failed = runs.length === 0 || runs.some((r) => r.status !== "succeeded");
  const policies = [...base.config?.policies ?? [], ...group.policies];
  // One rule per approval requirement: a project that several base entries match must meet each of them.
  const rules: ApprovalRule[] = runs.flatMap((r) => {
    const changes = plans.get(r.id)?.changes;
    const counts = changes?.counts;
    const effective = rulesOf(base, group, r);
    const policyRequired = changes ? evaluatePolicies(policies, changes).requiredApprovals : 0;
    return [effective.approvals, ...(effective.also_approvals ?? [])].map((approvals) => ({
      policyRequired,
      project: r.project,
      required: approvals.required,
      destroyRequired: approvals.destroy_required,
      teams: approvals.teams,
      users: approvals.users,
      destroys: !!counts && counts.destroy + counts.replace > 0,
    }));
  });
  // A require_approval policy that matched asks for its owners' approvals of the planned commit (owners with write; never the author).
  for (const r of runs) {
    for (const o of r.policy?.outcomes ?? []) {
      if (o.effect !== "require_approval" || o.error) continue;
      rules.push({ project: r.project, policy: o.policy, required: o.approvals ?? 1, teams: o.owners.teams, users: o.owners.users, destroys: false });
    }
  }
  const reviews = await gh.listReviews({ owner, name }, group.pull_number!);
  const author = (group.author ?? "").toLowerCase();
  const candidates = new Set(approvalsOn(reviews, group.sha).filter((u) => u.toLowerCase() !== author));
  // Who pushed to the branch or authored a commit on it never approves: asked only when someone's approval could count.
  const excluded = candidates.size ? await ownersOfChange(deps, gh, group) : [];
  const own = new Set(excluded);
  const selfApproved = [...candidates].filter((u) => own.has(u.toLowerCase())).sort();
  // One permission look-up per reviewer per evaluation: a reviewer without write now does not count.
  const permissions = new Map<string, boolean>();
  for (const user of [...candidates].filter((u) => !own.has(u.toLowerCase()))) {
    permissions.set(user, APPROVER_PERMISSIONS.has(await gh.permissionOf({ owner, name }, user)));
  }
  const counted = reviews.filter((r) => permissions.get(r.user) === true);
  // Team membership is asked only for the reviewers and teams that matter.
  const membership = new Map<string, boolean>();
  for (const team of new Set(rules.flatMap((r) => r.teams))) {
    for (const user of new Set(counted.map((r) => r.user))) {
      const [org, slug] = team.includes("/") ? (team.split("/", 2) as [string, string]) : [owner, team];
      membership.set(`${team}\u0000${user}`, await gh.isTeamMember(org, slug, user));
    }
  }
  const result = evaluateApprovals({ sha: group.sha, author: group.author ?? "", excluded, reviews: counted, rules, isMember: (t, u) => membership.get(`${t}\u0000${u}`) ?? false });
  const pending = runs.some((r) => r.status === "queued" || r.status === "running");
  const unplanned = group.unplanned ?? [];
  return { ...result, met: result.met && !failed && !unplanned.length, failed, pending, unplanned, selfApproved };
}

/** Everyone who made the PR's change besides its author: the senders of its pushes and the users of its commits (lower-cased). */
async function ownersOfChange(deps: WorkerDeps, gh: GitHub, group: RunGroup): Promise<string[]> {
  const [owner, name] = group.repo.split("/") as [string, string];
  const [pushers, branchPushers, committers] = await Promise.all([
    pushersOf(deps.pool, group.repo, group.pull_number!),
    group.head_ref ? branchPushersOf(deps.pool, group.repo, group.head_ref) : [],
    gh.pullCommitUsers({ owner, name }, group.pull_number!),
  ]);
  return [...new Set([...pushers, ...branchPushers, ...committers.map((u) => u.toLowerCase())])].sort();
}
