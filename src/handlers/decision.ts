import type { BranchPusher, Pusher } from "../db/pull-pushers.js";
import type { JobRequest } from "../jobs/jobs.js";

/** What the webhook path decided for one delivery: recorded, then its jobs enqueued, in one transaction. */
export interface Decision {
  outcome: string;
  jobs: JobRequest[];
  /** Someone who pushed to a PR's branch: recorded with the delivery, whatever else is decided (they never approve it). */
  pusher?: Pusher;
  /** Someone who pushed to a branch (a push event): recorded, they never approve a PR from that branch. */
  branchPusher?: BranchPusher;
}

export const ignore = (why: string): Decision => ({ outcome: `ignored:${why}`, jobs: [] });
