import { createHmac } from "node:crypto";
import type { Queryable } from "../db/pool.js";
import { getGroup, type GroupOutcome, type RunGroup } from "../db/run-groups.js";
import { groupRunKeys } from "../db/runs.js";
import { enqueue, TASKS, type ReportApplyPayload } from "../jobs/jobs.js";
import type { WorkerDeps } from "./deps.js";

/** How long one delivery attempt may take; a slow receiver is retried later, never waited on by a job. */
const SEND_TIMEOUT_MS = 10_000;

/** The audit-style event an apply outcome is announced as; none for outcomes that leave nothing undone. */
export function notifyEvent(outcome: GroupOutcome): string | undefined {
  if (outcome.mode === "queue") return undefined;
  if (outcome.result === "applied") return "apply.succeeded";
  if (outcome.result === "failed") return "apply.failed";
  if (outcome.result === "interrupted") return "apply.interrupted";
  return outcome.result === "refused" && !outcome.neutral ? "apply.denied" : undefined;
}

/** A drift check that found a project drifting, announced like an apply outcome. */
export interface DriftNotice {
  repo: string;
  project: string;
  workspace: string;
  branch: string;
  sha: string;
  issue: number;
  counts: { add: number; change: number; destroy: number; replace: number };
}

/** Queues the announcement of drift found (in the caller's transaction). */
export async function enqueueDriftNotification(tx: Queryable, deps: Pick<WorkerDeps, "notify">, drift: DriftNotice): Promise<void> {
  if (!deps.notify) return;
  await enqueue(tx, { task: TASKS.notify, payload: { drift }, jobKey: `notify:drift:${drift.repo}:${drift.project}:${drift.workspace}:${drift.sha}`, maxAttempts: 10 });
}

/** Queues the announcement of a group's outcome in the caller's transaction (the outbox); a no-op when none is configured. */
export async function enqueueNotification(tx: Queryable, deps: Pick<WorkerDeps, "notify">, installationId: number, group: RunGroup, outcome: GroupOutcome): Promise<void> {
  if (!deps.notify || !notifyEvent(outcome)) return;
  const payload: ReportApplyPayload = { installationId, groupId: group.id };
  await enqueue(tx, { task: TASKS.notify, payload, jobKey: `notify:${group.id}`, maxAttempts: 10 });
}

/** HMAC-SHA256 of the body with PLANGATE_NOTIFY_SECRET, as `sha256=<hex>` (GitHub's webhook convention). */
export const notifySignature = (secret: string, body: string) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

/**
 * Sends one apply outcome to PLANGATE_NOTIFY_URL: Slack-compatible JSON (a
 * `text` line and a structured body), signed. A refusal or an error throws,
 * and the queue retries with backoff.
 */
export async function sendNotification(deps: WorkerDeps, job: ReportApplyPayload | { drift: DriftNotice }): Promise<void> {
  if (!deps.notify) return;
  if ("drift" in job) {
    const { drift } = job;
    const text = deps.templates.render("notify-text", { event: "drift.detected", ...drift, shortSha: drift.sha.slice(0, 7) }).trim();
    return post(deps.notify, "drift.detected", JSON.stringify({ text, event: "drift.detected", ...drift }));
  }
  const group = await getGroup(deps.pool, job.groupId);
  const event = group.outcome && notifyEvent(group.outcome);
  if (!event || !group.outcome) return;
  const runs = await groupRunKeys(deps.pool, group.id);
  const runUrl = deps.runLinks?.url(group.id);
  const projects = runs.map((r) => ({ project: r.project, workspace: r.workspace, status: r.status }));
  const outcome = group.outcome;
  const text = deps.templates.render("notify-text", { event, repo: group.repo, pullNumber: group.pull_number, shortSha: group.sha.slice(0, 7), onMerge: outcome.mode === "merge", projects, runUrl, code: outcome.result === "refused" ? outcome.code : undefined }).trim();
  const body = JSON.stringify({
    text,
    event,
    repo: group.repo,
    pullNumber: group.pull_number,
    sha: group.sha,
    mode: outcome.mode,
    reason: outcome.result === "refused" ? outcome.code : undefined,
    projects,
    runUrl,
  });
  await post(deps.notify, event, body);
}

async function post(notify: { url: string; secret: string }, event: string, body: string): Promise<void> {
  const response = await fetch(notify.url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-plangate-event": event, "x-plangate-signature-256": notifySignature(notify.secret, body) },
    body,
    signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
  });
  if (!response.ok) throw new Error(`PLANGATE_NOTIFY_URL answered ${response.status}: the notification is retried`);
}
