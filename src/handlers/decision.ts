import type { JobRequest } from "../jobs/jobs.js";

/** What the webhook path decided for one delivery: recorded, then its jobs enqueued, in one transaction. */
export interface Decision {
  outcome: string;
  jobs: JobRequest[];
}

export const ignore = (why: string): Decision => ({ outcome: `ignored:${why}`, jobs: [] });
