import { TASKS, type PlanPullRequestPayload } from "../jobs/jobs.js";
import { ignore, type Decision } from "./decision.js";

const PLAN_ACTIONS = new Set(["opened", "reopened", "synchronize", "ready_for_review"]);

interface PullRequestEvent {
  action: string;
  installation?: { id: number };
  repository: { name: string; owner: { login: string }; full_name: string };
  pull_request: {
    number: number;
    draft?: boolean;
    state: string;
    user: { login: string } | null;
    head: { sha: string; repo: { full_name: string } | null };
    base: { repo: { full_name: string } };
  };
}

/** pull_request events: plan on open, reopen, push and ready-for-review; no GitHub calls here. */
export function onPullRequest(event: PullRequestEvent, deliveryId: string): Decision {
  const pr = event.pull_request;
  if (!PLAN_ACTIONS.has(event.action)) return ignore(`action ${event.action}`);
  if (!event.installation) return ignore("no installation");
  if (pr.draft) return ignore("draft");
  const payload: PlanPullRequestPayload = {
    trigger: deliveryId,
    pull: {
      installationId: event.installation.id,
      owner: event.repository.owner.login,
      repo: event.repository.name,
      number: pr.number,
      headSha: pr.head.sha,
      author: pr.user?.login ?? "",
    },
  };
  return {
    outcome: "enqueued:plan",
    jobs: [{ task: TASKS.planPullRequest, payload, queueName: `pull:${event.repository.full_name}#${pr.number}`, jobKey: `plan-pr:${deliveryId}` }],
  };
}
