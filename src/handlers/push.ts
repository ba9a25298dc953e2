import { ignore, type Decision } from "./decision.js";

export interface PushEvent {
  ref: string;
  deleted?: boolean;
  repository: { full_name: string };
  sender?: { login: string };
}

/**
 * push events: nothing is planned (pull_request events do that), but who
 * pushed to a branch is recorded, whether or not a PR exists yet: they never
 * approve a PR whose head is that branch (DESIGN.md section 3).
 */
export function onPush(event: PushEvent): Decision {
  const branch = /^refs\/heads\/(.+)$/.exec(event.ref)?.[1];
  const login = event.sender?.login;
  if (!branch || !login || event.deleted) return ignore("push");
  return { ...ignore("push recorded"), branchPusher: { repo: event.repository.full_name, branch, login } };
}
