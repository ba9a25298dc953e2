import type { Review } from "../github/github.js";

/** What one project asks of its approvers (from .plangate.yml and its plan). */
export interface ApprovalRule {
  project: string;
  required: number;
  /** Approvals a plan that destroys or replaces needs (at least `required` whatever this says). */
  destroyRequired?: number;
  /** Extra approvals a policy asks for (policy `require_approvals`). */
  policyRequired?: number;
  teams: string[];
  users: string[];
  /** The plan destroys or replaces something. */
  destroys: boolean;
  /** A require_approval policy's owners: the policy's name (its rule asks only for its owners' approvals). */
  policy?: string;
}

export interface ApprovalShortfall {
  project: string;
  needed: number;
  have: number;
  from: string[];
  /** The require_approval policy that asks for them. */
  policy?: string;
}

export interface ApprovalResult {
  met: boolean;
  /** Reviewers whose approval counts for at least one project. */
  approvers: string[];
  missing: ApprovalShortfall[];
}

/**
 * Each reviewer's standing approval: their latest review that is not a mere
 * comment, counted only when it approves exactly the planned commit.
 */
export function approvalsOn(reviews: Review[], sha: string): string[] {
  const latest = new Map<string, Review>();
  for (const review of reviews) if (review.state !== "COMMENTED" && review.state !== "PENDING") latest.set(review.user, review);
  return [...latest.values()].filter((r) => r.state === "APPROVED" && r.commitId === sha).map((r) => r.user).sort();
}

/**
 * Whether the approvals on `sha` satisfy every project's rule. The PR author
 * never counts, nor does anyone in `excluded` (who pushed to the PR's branch or
 * authored a commit on it): nobody approves their own change.
 */
export function evaluateApprovals(input: {
  sha: string;
  author: string;
  excluded?: string[];
  reviews: Review[];
  rules: ApprovalRule[];
  isMember: (team: string, user: string) => boolean;
}): ApprovalResult {
  const own = new Set([input.author, ...(input.excluded ?? [])].map((u) => u.toLowerCase()));
  const approvers = approvalsOn(input.reviews, input.sha).filter((u) => !own.has(u.toLowerCase()));
  const counted = new Set<string>();
  const missing: ApprovalShortfall[] = [];
  for (const rule of input.rules) {
    const restricted = rule.teams.length > 0 || rule.users.length > 0;
    const eligible = approvers.filter((u) => !restricted || rule.users.includes(u) || rule.teams.some((t) => input.isMember(t, u)));
    eligible.forEach((u) => counted.add(u));
    // destroy_required asks for more on a destroy, never fewer: otherwise a PR's own file could add a small one and lower its bar.
    const needed = Math.max(rule.required, rule.destroys ? (rule.destroyRequired ?? 0) : 0, rule.policyRequired ?? 0);
    if (eligible.length < needed) {
      missing.push({ project: rule.project, needed, have: eligible.length, from: [...rule.teams.map((t) => `team ${t}`), ...rule.users.map((u) => `@${u}`)], ...(rule.policy ? { policy: rule.policy } : {}) });
    }
  }
  return { met: missing.length === 0, approvers: [...counted].sort(), missing };
}
