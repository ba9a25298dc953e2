import { forkNotice, isFork } from "../jobs/fork-notice.js";
import { pullQueue, TASKS, type PlanPullRequestPayload, type PullClosedPayload } from "../jobs/jobs.js";
import type { Templates } from "../render/templates.js";
import { ignore, type Decision } from "./decision.js";

const PLAN_ACTIONS = new Set(["opened", "reopened", "synchronize", "ready_for_review"]);

export interface PullRequestEvent {
  sender?: { login: string };
  action: string;
  installation?: { id: number };
  repository: { name: string; owner: { login: string }; full_name: string; default_branch?: string };
  pull_request: {
    number: number;
    draft?: boolean;
    state: string;
    merged?: boolean;
    merge_commit_sha?: string | null;
    merged_by?: { login: string } | null;
    user: { login: string } | null;
    head: { sha: string; repo: { full_name: string } | null };
    base: { ref: string; repo: { full_name: string } };
  };
}

export interface PullRequestPolicy {
  allowForkPrs: boolean;
  templates: Templates;
}

/**
 * pull_request events: plan on open, reopen, push and ready-for-review; no GitHub calls here.
 * The sender of a push (synchronize) is recorded whatever is decided: who pushed never approves.
 */
export function onPullRequest(policy: PullRequestPolicy, event: PullRequestEvent, deliveryId: string): Decision {
  const decision = decide(policy, event, deliveryId);
  const login = event.sender?.login;
  if (event.action !== "synchronize" || !login) return decision;
  return { ...decision, pusher: { repo: event.repository.full_name, pullNumber: event.pull_request.number, login } };
}

function decide(policy: PullRequestPolicy, event: PullRequestEvent, deliveryId: string): Decision {
  const pr = event.pull_request;
  if (!event.installation) return ignore("no installation");
  const queueName = pullQueue(event.repository.full_name, pr.number);
  if (event.action === "closed") {
    const payload: PullClosedPayload = {
      trigger: deliveryId,
      installationId: event.installation.id,
      owner: event.repository.owner.login,
      repo: event.repository.name,
      number: pr.number,
      headSha: pr.head.sha,
      merged: !!pr.merged,
      mergeSha: pr.merge_commit_sha ?? null,
      actor: pr.merged_by?.login ?? event.sender?.login ?? "",
      baseRef: pr.base.ref,
      defaultBranch: event.repository.default_branch,
    };
    // A later attempt of an apply that died midway reports it interrupted, then plans afresh and applies only the approved change.
    return { outcome: pr.merged ? "enqueued:apply-on-merge" : "enqueued:release", jobs: [{ task: TASKS.pullClosed, payload, queueName, jobKey: `closed:${deliveryId}`, maxAttempts: 3 }] };
  }
  if (!PLAN_ACTIONS.has(event.action)) return ignore(`action ${event.action}`);
  if (pr.draft) return ignore("draft");
  const owner = event.repository.owner.login;
  const repo = event.repository.name;
  const headRepo = pr.head.repo?.full_name ?? null;
  if (isFork(headRepo, pr.base.repo.full_name) && !policy.allowForkPrs) {
    if (event.action !== "opened" && event.action !== "reopened") return ignore("fork");
    return { outcome: "ignored:fork", jobs: [{ task: TASKS.notice, payload: forkNotice(event.installation.id, owner, repo, pr.number, headRepo, policy.templates) }] };
  }
  const payload: PlanPullRequestPayload = {
    trigger: deliveryId,
    pull: { installationId: event.installation.id, owner, repo, number: pr.number, headSha: pr.head.sha, author: pr.user?.login ?? "", baseRef: pr.base.ref, defaultBranch: event.repository.default_branch },
    selection: { mode: "autoplan" },
    action: event.action,
    receivedAt: Date.now(),
  };
  return {
    outcome: "enqueued:plan",
    // One waiting plan per PR: a later event replaces it (the job plans the PR's head as it is when it runs), so a burst of pushes plans once.
    jobs: [{ task: TASKS.planPullRequest, payload, queueName, jobKey: `plan-pr:${event.repository.full_name}#${pr.number}` }],
  };
}
