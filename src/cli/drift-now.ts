import { installationOf } from "../db/drift.js";
import { inTransaction, type Pool } from "../db/pool.js";
import { enqueue, TASKS, type DriftScanPayload } from "../jobs/jobs.js";

const REPO = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/** `plangate drift [OWNER/REPO]`: a forced drift scan, queued for the workers. */
export async function queueDriftCheck(pool: Pool, repo?: string): Promise<{ ok: true } | { ok: false; message: string }> {
  const payload: DriftScanPayload = { force: true };
  if (repo !== undefined) {
    if (!REPO.test(repo)) return { ok: false, message: `"${repo}" is not OWNER/REPO` };
    const installationId = await installationOf(pool, repo);
    if (installationId === undefined) return { ok: false, message: `no delivery from ${repo} was ever received: install the GitHub App on it first` };
    Object.assign(payload, { repo, installationId });
  }
  await inTransaction(pool, (tx) => enqueue(tx, { task: TASKS.driftScan, payload, maxAttempts: 3 }));
  return { ok: true };
}
