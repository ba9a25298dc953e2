import { consumePullPlans } from "../../db/plans.js";
import { inTransaction } from "../../db/pool.js";
import type { CommandPayload } from "../../jobs/jobs.js";
import type { WorkerDeps } from "../deps.js";
import { releasePullLocks } from "./release-locks.js";

/** /unlock: release every lock the PR holds and discard its plans, in one transaction; say what was released. */
export async function unlock(deps: WorkerDeps, job: CommandPayload, reply: (body: string) => Promise<void>): Promise<void> {
  const repoName = `${job.owner}/${job.repo}`;
  const released = await inTransaction(deps.pool, async (tx) => {
    await consumePullPlans(tx, repoName, job.number, `unlock:${job.actor}`);
    return releasePullLocks(tx, repoName, job.number, job.actor, "unlock");
  });
  await reply(deps.templates.render("unlock-reply", { actor: job.actor, released }));
}
