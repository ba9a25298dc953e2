import { appendAuditEvent } from "../../audit/audit-log.js";
import { releaseLocks, type LockKey } from "../../db/locks.js";
import type { Queryable } from "../../db/pool.js";

/** Releases the PR's locks inside the caller's transaction, auditing each as lock.released. */
export async function releasePullLocks(tx: Queryable, repo: string, pullNumber: number, actor: string, reason: string): Promise<LockKey[]> {
  const released = await releaseLocks(tx, repo, pullNumber);
  for (const lock of released) {
    await appendAuditEvent(tx, { action: "lock.released", actor, repo, pullNumber, project: lock.project, workspace: lock.workspace, details: { reason } });
  }
  return released;
}
