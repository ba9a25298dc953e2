import type { Probot } from "probot";
import type { Pool } from "./db/pool.js";
import { onCheckRun, type CheckRunEvent } from "./handlers/check-run.js";
import { ignore, type Decision } from "./handlers/decision.js";
import { onMergeGroup, type MergeGroupEvent } from "./handlers/merge-group.js";
import { onIssueComment, type IssueCommentEvent } from "./handlers/issue-comment.js";
import { onPullRequest, type PullRequestEvent } from "./handlers/pull-request.js";
import { onPullRequestReview, type PullRequestReviewEvent } from "./handlers/pull-request-review.js";
import { onPush, type PushEvent } from "./handlers/push.js";
import { DeliveryNotRecorded, recordAndEnqueue } from "./handlers/record-delivery.js";
import type { Templates } from "./render/templates.js";

export interface AppDeps {
  pool: Pool;
  templates: Templates;
  allowForkPrs: boolean;
}

/** What each event means, decided without GitHub calls, git or terraform. */
function decide(deps: AppDeps, event: string, payload: unknown, deliveryId: string): Decision {
  switch (event) {
    case "pull_request":
      return onPullRequest(deps, payload as PullRequestEvent, deliveryId);
    case "check_run":
      return onCheckRun(payload as CheckRunEvent, deliveryId);
    case "pull_request_review":
      return onPullRequestReview(payload as PullRequestReviewEvent, deliveryId);
    case "merge_group":
      return onMergeGroup(payload as MergeGroupEvent, deliveryId);
    case "push":
      return onPush(payload as PushEvent);
    case "issue_comment":
      return onIssueComment(deps.templates, payload as IssueCommentEvent, deliveryId);
    default:
      return ignore(`event ${event}`);
  }
}

/** The Probot app: every delivery is recorded and turned into jobs; nothing slow happens here. */
export function plangateApp(deps: AppDeps) {
  return (app: Probot) => {
    app.onAny(async (context) => {
      try {
        const decision = decide(deps, context.name, context.payload, context.id);
        const fresh = await recordAndEnqueue(deps.pool, { id: context.id, event: context.name, payload: context.payload as never }, decision);
        app.log.debug({ deliveryId: context.id, outcome: decision.outcome, duplicate: !fresh }, "delivery recorded");
      } catch (error) {
        // The answer goes to the sender and into the delivery log GitHub shows: generic words only; the log here gets the cause.
        const refused = error instanceof DeliveryNotRecorded ? error : new DeliveryNotRecorded(error);
        app.log.error({ deliveryId: context.id, event: context.name, err: refused.cause }, refused.message);
        throw refused;
      }
    });
  };
}
