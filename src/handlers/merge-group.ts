import { pullQueue, TASKS, type MergeGroupPayload } from "../jobs/jobs.js";
import { queuedPullNumber } from "../jobs/merge-queue-ref.js";
import { ignore, type Decision } from "./decision.js";

export interface MergeGroupEvent {
  action: string;
  installation?: { id: number };
  repository: { name: string; owner: { login: string }; full_name: string };
  merge_group: { head_sha: string; head_ref: string; base_ref: string };
}

/** merge_group.checks_requested: verify the queue commit (in the PR's own queue, after its plans); `destroyed` needs nothing. */
export function onMergeGroup(event: MergeGroupEvent, deliveryId: string): Decision {
  if (event.action !== "checks_requested") return ignore(`action ${event.action}`);
  if (!event.installation) return ignore("no installation");
  const number = queuedPullNumber(event.merge_group.head_ref);
  if (number === undefined) return ignore("not a merge queue branch");
  const payload: MergeGroupPayload = {
    trigger: deliveryId,
    installationId: event.installation.id,
    owner: event.repository.owner.login,
    repo: event.repository.name,
    headSha: event.merge_group.head_sha,
    headRef: event.merge_group.head_ref,
    baseRef: event.merge_group.base_ref,
  };
  return { outcome: "enqueued:merge-queue", jobs: [{ task: TASKS.mergeGroup, payload, queueName: pullQueue(event.repository.full_name, number), jobKey: `merge-group:${deliveryId}` }] };
}
