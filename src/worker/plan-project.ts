import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { appendAuditEvent } from "../audit/audit-log.js";
import { storePlan } from "../db/plans.js";
import { inTransaction } from "../db/pool.js";
import { finishRun, getRun, startRun, type Run, type RunFailure } from "../db/runs.js";
import { terraformPlan, type PlanOutcome } from "../engines/terraform.js";
import type { GitHub } from "../github/github.js";
import type { PlanProjectPayload } from "../jobs/jobs.js";
import { parsePlanChanges } from "../plans/changes.js";
import { seal } from "../plans/seal.js";
import { resolveInside } from "../projects/safe-dir.js";
import { CONFIG_FILE } from "../settings/load-repo-config.js";
import type { WorkerDeps } from "./deps.js";
import { reportPlanGroupIfDone } from "./report-plan.js";

const auditFields = (run: Run) => ({ repo: run.repo, pullNumber: run.pull_number, project: run.project, workspace: run.workspace, sha: run.sha, runId: run.id });

/** The worker's values of the variables the project allowlists; nothing else enters the sandbox. */
function allowlistedEnv(names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((n) => (process.env[n] !== undefined ? [[n, process.env[n]!]] : [])));
}

function describeDuration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

/** Checks out the run's commit and plans its project in the sandbox. Failures of the plan are results, not errors. */
async function plan(deps: WorkerDeps, run: Run, gh: GitHub, workRoot: string): Promise<PlanOutcome | RunFailure> {
  const checkoutDir = path.join(workRoot, "checkout");
  const outDir = path.join(workRoot, "out");
  await mkdir(outDir, { recursive: true });
  const [owner, name] = run.repo.split("/") as [string, string];
  await deps.mirrors.checkout({ owner, name }, run.sha, checkoutDir, () => gh.cloneToken());
  try {
    await resolveInside(checkoutDir, run.dir);
  } catch (error) {
    return { stage: "config", message: `${CONFIG_FILE}: ${(error as Error).message}` };
  }
  if (run.engine === "cdktf") return { stage: "synth", message: "cdktf projects are not supported by this version of plangate yet" };
  const { home, release } = await deps.terraformHomes.acquire();
  try {
    return await terraformPlan({
      sandbox: deps.sandbox,
      bin: run.engine === "tofu" ? deps.tofuBin : deps.terraformBin,
      home,
      checkoutDir,
      projectDir: run.dir,
      workspace: run.workspace,
      env: allowlistedEnv(run.config.env ?? []),
      timeoutMs: deps.jobTimeoutMs,
      outDir,
    });
  } finally {
    release();
  }
}

/** Runs one project's plan end to end: audit, sandboxed terraform, stored result, and the report once the group is done. */
export async function planProject(deps: WorkerDeps, job: PlanProjectPayload, attempt: { number: number; max: number }): Promise<void> {
  const run = await getRun(deps.pool, job.runId);
  if (!run) throw new Error(`run ${job.runId} does not exist`);
  const started = await inTransaction(deps.pool, async (tx) => {
    const ok = await startRun(tx, run.id);
    if (ok && attempt.number === 1) await appendAuditEvent(tx, { action: "plan.started", actor: "plangate", ...auditFields(run), details: { dir: run.dir, engine: run.engine } });
    return ok;
  });
  const gh = await deps.github.forInstallation(job.installationId);
  if (started) {
    const workRoot = path.join(deps.dataDir, "runs", String(run.id));
    try {
      const outcome = await plan(deps, run, gh, workRoot);
      await recordOutcome(deps, run, outcome);
    } catch (error) {
      if (attempt.number < attempt.max) throw error;
      deps.log.error({ runId: run.id, err: error }, "plan failed with a system error");
      await recordOutcome(deps, run, { stage: "plangate", message: `plangate could not run this plan: ${(error as Error).message}` });
    } finally {
      await rm(workRoot, { recursive: true, force: true });
    }
  }
  await reportPlanGroupIfDone(deps, run.group_id, gh);
}

async function recordOutcome(deps: WorkerDeps, run: Run, outcome: PlanOutcome | RunFailure): Promise<void> {
  if ("ok" in outcome && outcome.ok) {
    const changes = parsePlanChanges(outcome.planJson);
    const sealed = seal(deps.encryptionKey, outcome.planFile);
    await inTransaction(deps.pool, async (tx) => {
      await storePlan(tx, run.id, sealed, changes);
      await finishRun(tx, run.id, { status: "succeeded", summary: changes.counts, output: outcome.output });
      await appendAuditEvent(tx, { action: "plan.succeeded", actor: "plangate", ...auditFields(run), details: { ...changes.counts } });
    });
    return;
  }
  const failure: RunFailure =
    "ok" in outcome
      ? {
          stage: outcome.stage,
          message: outcome.timedOut ? `timed out after ${describeDuration(deps.jobTimeoutMs)}` : `terraform ${outcome.stage} failed`,
          timedOut: outcome.timedOut,
        }
      : outcome;
  const output = "ok" in outcome ? outcome.output : "";
  await inTransaction(deps.pool, async (tx) => {
    await finishRun(tx, run.id, { status: "failed", output, error: failure });
    await appendAuditEvent(tx, { action: "plan.failed", actor: "plangate", ...auditFields(run), details: { ...failure } });
    if (failure.stage === "config") await appendAuditEvent(tx, { action: "config.invalid", actor: "plangate", ...auditFields(run), details: { ...failure } });
  });
}
