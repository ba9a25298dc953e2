import { ProbotOctokit } from "probot";
import { yieldWithoutTimers } from "./bottleneck-yield.js";
import { orderedWrites, retryLimiterKeepingOrder } from "./write-order.js";

/**
 * GitHub's rate limits, waited out by Octokit's throttling plugin (Probot's
 * defaults give up on a secondary limit at once). A secondary limit is retried
 * after its `retry-after`; an exhausted primary limit after `x-ratelimit-reset`.
 * Each a bounded number of times and only for a bounded wait: past that the
 * job fails and the queue retries it later. 5xx answers are retried by
 * Octokit's retry plugin (Probot's default: 3 times, after 1, 4 and 9 s).
 */
export const RATE_LIMIT_RETRIES = { secondary: 3, primary: 2 } as const;
/** The longest single wait (seconds) a job sits out inside one request. */
export const RATE_LIMIT_MAX_WAIT_S = { secondary: 120, primary: 300 } as const;

type Handler = (retryAfter: number, options: { method: string; url: string }, octokit: { log: { warn(message: string): void } }, retryCount: number) => boolean;

const waitOut = (kind: keyof typeof RATE_LIMIT_RETRIES): Handler => (retryAfter, options, octokit, retryCount) => {
  const retry = retryCount < RATE_LIMIT_RETRIES[kind] && retryAfter <= RATE_LIMIT_MAX_WAIT_S[kind];
  octokit.log.warn(`GitHub ${kind} rate limit on ${options.method} ${options.url}: ${retry ? `retrying in ${retryAfter} s` : "giving up"} (retry ${retryCount + 1} of ${RATE_LIMIT_RETRIES[kind]})`);
  return retry;
};

yieldWithoutTimers();

/**
 * Probot's Octokit with plangate's rate-limit handlers (they replace Probot's in
 * every client it makes) and its order of writes: the plan comment first, and
 * writes for a head the PR has moved past dropped. Writes go `writeIntervalMs`
 * apart (PLANGATE_GITHUB_WRITE_INTERVAL; GitHub asks for a second), comments
 * that notify people three times that, as the throttling plugin paces them;
 * every client of one plangate shares the pace.
 */
export function plangateOctokit(writeIntervalMs = 1000): typeof ProbotOctokit {
  const writes = orderedWrites(writeIntervalMs);
  const notifications = orderedWrites(3 * writeIntervalMs);
  return ProbotOctokit.defaults((options: ConstructorParameters<typeof ProbotOctokit>[0] = {}) => ({
    ...options,
    throttle: { ...options.throttle, onSecondaryRateLimit: waitOut("secondary"), onRateLimit: waitOut("primary"), write: writes, notifications, retryLimiter: retryLimiterKeepingOrder() },
  })) as typeof ProbotOctokit;
}
