import { TASKS, type ReviewPayload } from "../jobs/jobs.js";
import { ignore, type Decision } from "./decision.js";

export interface PullRequestReviewEvent {
  action: string;
  installation?: { id: number };
  repository: { name: string; owner: { login: string }; full_name: string };
  pull_request: { number: number; head: { sha: string } };
}

const ACTIONS = new Set(["submitted", "edited", "dismissed"]);

/** A review was submitted, edited or dismissed: re-evaluate plangate/approval on the head. */
export function onPullRequestReview(event: PullRequestReviewEvent, deliveryId: string): Decision {
  if (!ACTIONS.has(event.action)) return ignore(`action ${event.action}`);
  if (!event.installation) return ignore("no installation");
  const payload: ReviewPayload = {
    installationId: event.installation.id,
    owner: event.repository.owner.login,
    repo: event.repository.name,
    number: event.pull_request.number,
    headSha: event.pull_request.head.sha,
  };
  const queueName = `pull:${event.repository.full_name}#${event.pull_request.number}`;
  return { outcome: "enqueued:approval", jobs: [{ task: TASKS.review, payload, queueName, jobKey: `review:${deliveryId}` }] };
}
