import { pullQueue, TASKS, type PlanPullRequestPayload } from "../jobs/jobs.js";
import { ignore, type Decision } from "./decision.js";

export interface CheckRunEvent {
  action: string;
  installation?: { id: number };
  repository: { name: string; owner: { login: string }; full_name: string };
  check_run: { name: string; head_sha: string; pull_requests: { number: number; head: { sha: string } }[] };
}

/** "Re-run" on plangate/plan (or plangate/approval) in GitHub's UI plans the pull request's head again. */
export function onCheckRun(event: CheckRunEvent, deliveryId: string): Decision {
  if (event.action !== "rerequested") return ignore(`action ${event.action}`);
  if (!event.installation) return ignore("no installation");
  if (!["plangate/plan", "plangate/approval"].includes(event.check_run.name)) return ignore(`check ${event.check_run.name}`);
  const pulls = event.check_run.pull_requests.filter((p) => p.head.sha === event.check_run.head_sha);
  if (!pulls.length) return ignore("no pull request at this commit");
  return {
    outcome: "enqueued:plan",
    jobs: pulls.map((p) => {
      const payload: PlanPullRequestPayload = {
        trigger: `${deliveryId}#${p.number}`,
        pull: { installationId: event.installation!.id, owner: event.repository.owner.login, repo: event.repository.name, number: p.number, headSha: p.head.sha, author: "" },
        selection: { mode: "autoplan" },
      };
      return { task: TASKS.planPullRequest, payload, queueName: pullQueue(event.repository.full_name, p.number), jobKey: `plan-pr:${payload.trigger}` };
    }),
  };
}
