import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { appendAuditEvent, appendAuditEvents } from "../../audit/audit-log.js";
import { loadGroupResults, type GroupResults } from "../../db/plan-report.js";
import { storePlan } from "../../db/plans.js";
import { inTransaction, type Queryable } from "../../db/pool.js";
import { acquireProjectLocks } from "../../db/project-locks.js";
import { createStackRun, finishRun, getRun, getRuns, groupSuperseded, skipSupersededRun, startRun, storeRunOutput, unfinishedRunCount, type Run, type RunFailure } from "../../db/runs.js";
import { getGroup, type RunGroup } from "../../db/run-groups.js";
import { failureMessage } from "../../engines/terraform.js";
import { outDirOf, type ProjectRun, type TogetherOutcome, type TogetherPart, type UnitPlan } from "../../run/project-runs.js";
import type { RunProject } from "../../run/sandbox-inputs.js";
import type { GitHub, MarkedComments } from "../../github/github.js";
import { batchJobKey, batchKeyPrefix, enqueue, EXPRESS_TASKS, projectQueue, TASKS, type PlanProjectPayload } from "../../jobs/jobs.js";
import type { PlanChanges } from "../../plans/changes.js";
import { isBlocking, judgePlan, overruled, type PlanJudgement, type RunPolicy } from "../../plans/policy-judgement.js";
import { pullOverrides } from "../../db/policy-overrides.js";
import { jobWaiting, moreUrgentJobWaiting } from "../../db/job-queue.js";
import { runningJob, type JobTurn } from "../../sandbox/lanes.js";
import { InputRefused } from "../../settings/input-limits.js";
import { CONFIG_FILE } from "../../settings/load-repo-config.js";
import type { WorkerDeps } from "../deps.js";
import { maskerFor } from "../masking.js";
import { reportWhenDone } from "./report-plan.js";
import type { RenderedAhead } from "./report-handoff.js";
import { planReportOf } from "../../render/plan-report.js";
import { markerLine, PLAN_MARKER } from "../../github/markers.js";
import { identitiesFor } from "../run-identity.js";
import { discardWhenGroupDone } from "./export-lifetime.js";

const auditFields = (run: Run) => ({ repo: run.repo, pullNumber: run.pull_number, project: run.project, workspace: run.workspace, sha: run.sha, runId: run.id });

/** The env names of the rules a run was planned under (base branch's, never the PR's alone). */
const runEnvNames = (run: Run) => run.rules?.env ?? [];

/** The project a plan run stands for, as the run service takes it. */
/** The project as its run was planned: the effective rules' env and credentials (the base branch's), never the PR's alone. */
const runProject = (run: Run): RunProject => ({ name: run.project, dir: run.dir, engine: run.engine, workspace: run.workspace, stacks: run.config.stacks, env: runEnvNames(run), credentials: run.rules?.credentials });

/** A failure's one-line message, worded in templates/failure-text.hbs. */
const failureText = (deps: WorkerDeps, data: object) => deps.templates.render("failure-text", data).trim();

function describeDuration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

/** A cdktf program's stacks ran past the job's time: the program's run fails, naming the setting. */
const programTimedOut = (deps: WorkerDeps, tool: string, planned: number, total: number): RunFailure => ({
  tool,
  stage: "plan",
  timedOut: true,
  message: `${failureText(deps, { kind: "timeout", duration: describeDuration(deps.jobTimeoutMs) })}, which bounds the synth and all stacks together: ${planned} of ${total} stacks planned`,
});

/**
 * A project whose engine makes each unit a run of its own (a cdktf
 * program's stacks): prepare once (synth), then plan every unit in
 * dependency order, each as a run of its own (project NAME/STACK). A failed
 * prepare fails the project's run. PLANGATE_JOB_TIMEOUT bounds the whole
 * project (`deadline`): each step gets only the time left, and a unit not
 * begun by then is not planned.
 */
async function planUnits(deps: WorkerDeps, run: Run, projectRun: ProjectRun, workRoot: string, deadline: number): Promise<RunFailure | "expanded"> {
  const left = () => deadline - deps.sandbox.clock.now();
  const prepared = await projectRun.prepare();
  // A synth that used up the job's time says which setting bounds it, as a terraform step's timeout does.
  const timeout = !prepared.ok && prepared.timedOut ? `${failureText(deps, { kind: "timeout", duration: describeDuration(deps.jobTimeoutMs) })}, in synth` : undefined;
  if (!prepared.ok) return { tool: prepared.tool, stage: prepared.stage, message: timeout ?? prepared.message, timedOut: prepared.timedOut, output: prepared.output };
  let planned = 0;
  for (const unit of prepared.units) {
    if (left() <= 0) return { ...programTimedOut(deps, projectRun.engine.tool, planned, prepared.units.length), output: prepared.output };
    const unitRun = await inTransaction(deps.pool, async (tx) => {
      const created = await createStackRun(tx, run, unit.name!);
      await appendAuditEvent(tx, { action: "plan.started", actor: "plangate", ...auditFields(created), details: { dir: unit.dir, engine: run.engine, stack: unit.name } });
      return created;
    });
    const outcome = await projectRun.plan(unit, { outDir: outDirOf(path.join(workRoot, "out"), unit) });
    const recorded = await recordOutcome(deps, unitRun, outcome);
    await recorded.output?.();
    planned++;
  }
  await finishRun(deps.pool, run.id, { status: "succeeded", output: prepared.output });
  return "expanded";
}

/** The plan group's one export of its commit (see CommitExports): named by the job that queued the group's runs. */
const exportKey = (run: Run, job: PlanProjectPayload) => job.exportKey ?? `${run.group_id}-${run.sha}`;

/**
 * Plans the run's project in the sandbox, over the plan group's shared export
 * of the commit (read-only) with a private writable copy of the project's
 * folder. Failures of the plan are results, not errors.
 */
async function plan(deps: WorkerDeps, run: Run, job: PlanProjectPayload, gh: GitHub, workRoot: string, started: () => void, group: () => Promise<RunGroup>): Promise<UnitPlan | RunFailure | "expanded"> {
  const deadline = deps.sandbox.clock.now() + deps.jobTimeoutMs;
  const [owner, name] = run.repo.split("/") as [string, string];
  const shared = await deps.exports.acquire(exportKey(run, job), { owner, name }, run.sha, () => gh.cloneToken());
  try {
    const identity = identitiesFor(gh, { owner, name })(async () => ({
      repository: run.repo,
      pullRequest: run.pull_number ?? undefined,
      sha: run.sha,
      ref: `refs/pull/${run.pull_number}/head`,
      actor: (await group()).author ?? "plangate",
      runId: run.id,
    }));
    const opened = await deps.runs.open({ checkout: { shared: shared.tree, workDir: path.join(workRoot, "checkout") }, project: runProject(run), phase: "plan", reason: "pull_request", deadline, identity });
    if (!opened.ok) return { stage: "config", message: opened.cause === "dir" ? `${CONFIG_FILE}: ${opened.message}` : opened.message };
    const projectRun = opened.run;
    if (projectRun.engine.unitsAreRuns) return await planUnits(deps, run, projectRun, workRoot, deadline);
    const prepared = await projectRun.prepare();
    if (!prepared.ok) return { tool: prepared.tool, stage: prepared.stage, message: prepared.message, timedOut: prepared.timedOut, output: prepared.output };
    return await projectRun.plan(prepared.units[0]!, { outDir: path.join(workRoot, "out"), started });
  } finally {
    shared.release();
  }
}

/**
 * Plans a job's runs: one project, or a batch of a large group's
 * (plan-jobs.ts). A batch's first attempt plans the runs it can in one
 * sandbox entry, each project kept apart there (planBatchTogether); the
 * rest, and every run of a retry, are planned one after the other, each in a
 * sandbox of its own as if it had a job of its own. Between two of those, a
 * batch that sees a more urgent job waiting (another PR's plan or report)
 * hands its remaining runs back to the queue, at its own priority, and ends.
 * A run that hit a system error does not stop the others: the job fails
 * after them, and its retry plans only what is left.
 */
export async function planProject(deps: WorkerDeps, job: PlanProjectPayload, attempt: { number: number; max: number }): Promise<void> {
  const runIds = job.runIds ?? [job.runId];
  const together = runIds.length > 1 && attempt.number === 1 ? await planBatchTogether(deps, job, runIds, attempt) : { left: runIds };
  let failure = together.failure;
  for (const [i, runId] of together.left.entries()) {
    if (i > 0 && !failure && job.priority !== undefined && (await urgentWaiting(deps, turnOf(job)))) {
      await handBack(deps, job, together.left.slice(i));
      break;
    }
    try {
      await planRun(deps, runId, job, attempt);
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
}

/** The runs of a batch not yet begun, queued again as a batch of their own at the batch's priority (in its repository slot's queue, if any). */
async function handBack(deps: WorkerDeps, job: PlanProjectPayload, rest: number[], db: Queryable = deps.pool, why = "a more urgent job waits: the batch hands its remaining runs back to the queue"): Promise<void> {
  deps.log.info({ runIds: rest }, why);
  const first = deps.repoConcurrency ? await getRun(db, rest[0]!) : undefined;
  const queueName = first && projectQueue(first.repo, first.project, first.workspace, deps.repoConcurrency);
  const payload: PlanProjectPayload = { ...job, runId: rest[0]!, runIds: rest };
  await enqueue(db, { task: TASKS.planProject, payload, queueName, jobKey: batchJobKey(job.exportKey, rest[0]!), maxAttempts: 3, priority: job.priority });
}

/** A batch's turn in the queue: its priority and its plan group. */
const turnOf = (job: PlanProjectPayload): JobTurn => ({ priority: job.priority ?? 0, group: job.exportKey });

/** Whether a job more urgent than the batch's, of another plan group, waits: in the queue, or in this process for a sandbox lane. */
async function urgentWaiting(deps: WorkerDeps, turn: JobTurn): Promise<boolean> {
  return !!deps.sandbox.lanes?.moreUrgentWaiting(turn) || (await moreUrgentJobWaiting(deps.pool, turn.priority, turn.group === undefined ? undefined : batchKeyPrefix(turn.group)));
}

/** How often a batch's shared entry looks for a more urgent job or an idle lane (besides whenever a job is queued). */
const URGENT_POLL_MS = 200;

/**
 * Plans the runs of a batch that can share a sandbox entry (queued, of an
 * engine that plans together, without per-run credentials; ProjectRuns
 * decides the rest) in one entry, each project in a sandbox of its own
 * inside it; then stores and reports each as a run planned alone is. The
 * runs stay queued while the entry runs, their locks held: once it ends,
 * those it planned are begun (started at the entry's start, audited) and
 * stored. A run the entry did not plan cleanly (a failure, a cap, the
 * deadline) is planned alone, so its failure reads as any run's. A more
 * urgent job (another PR's plan or report) stops the entry before its next
 * project: the runs it did not reach go back to the queue as a batch of
 * their own. Returns the runs left for one-by-one planning.
 */
async function planBatchTogether(deps: WorkerDeps, job: PlanProjectPayload, runIds: number[], attempt: { number: number; max: number }): Promise<{ left: number[]; failure?: { error: unknown } }> {
  const jobStart = performance.now();
  const all = { left: runIds };
  if (deps.sandbox.kind !== "bwrap") return all;
  const runs = await getRuns(deps.pool, runIds);
  const candidates = runs.filter((r) => r.status === "queued" && r.kind === "plan" && !!deps.runs.engine(r.engine).planTogether && !r.rules?.credentials);
  if (candidates.length < 2) return all;
  // The PR moved on: its runs are skipped one by one as usual.
  if (await groupSuperseded(deps.pool, candidates[0]!.group_id)) return all;
  // Every project's lock, or none: a batch never waits for an apply; its runs then wait one by one.
  const held = await acquireProjectLocks(deps.pool, candidates.map((r) => ({ repo: r.repo, project: r.project, workspace: r.workspace })), { waitMs: 1 });
  if (!held) return all;
  const begun: Run[] = [];
  let handedBack: number[] = [];
  let failure: { error: unknown } | undefined;
  try {
    const gh = await deps.github.forInstallation(job.installationId);
    const root = path.join(deps.dataDir, "runs", `batch-${candidates[0]!.id}`);
    const entryStart = new Date();
    const stop = new AbortController();
    const halve = new AbortController();
    let outcomes: TogetherOutcome[] = candidates.map(() => "alone");
    const watching = watchForTurns(deps, job, stop, halve);
    try {
      outcomes = await planCandidatesTogether(deps, candidates, job, gh, root, stop.signal, halve.signal);
    } catch (error) {
      deps.log.warn({ runIds: candidates.map((r) => r.id), err: error }, "the batch's shared sandbox entry failed: each run is planned alone");
    } finally {
      await watching.end();
      await rm(root, { recursive: true, force: true });
    }
    // Not reached because a more urgent job waits or a lane idles: back to the queue; every other run is begun now, with the entry's start.
    const unreached = candidates.filter((_, i) => outcomes[i] === "unreached" && (stop.signal.aborted || halve.signal.aborted)).map((r) => r.id);
    const given = new Map<number, UnitPlan>();
    await inTransaction(deps.pool, async (tx) => {
      if (await groupSuperseded(tx, candidates[0]!.group_id)) return; // every run left to be skipped one by one, as usual
      handedBack = unreached;
      for (const [i, run] of candidates.entries()) {
        if (handedBack.includes(run.id)) continue;
        const begins = await startRun(tx, run.id, { takeOver: false, at: entryStart });
        if (begins.how !== "started") continue;
        begun.push(run);
        const outcome = outcomes[i]!;
        if (typeof outcome !== "string") given.set(run.id, outcome);
      }
      // One hold of the audit chain for every run begun.
      await appendAuditEvents(tx, begun.map((run) => ({ action: "plan.started", actor: "plangate", ...auditFields(run), details: { dir: run.dir, engine: run.engine } })));
      if (handedBack.length) await handBack(deps, job, handedBack, tx, !stop.signal.aborted ? "a sandbox lane is idle: the batch hands it half of its runs not yet begun" : undefined);
    });
    // Each plan of the entry counts as a plan, its share of the entry's time as its duration.
    deps.metrics?.plansTogether.inc(given.size);
    const share = (Date.now() - entryStart.getTime()) / 1000 / Math.max(1, given.size);
    for (const run of begun) if (given.has(run.id)) deps.metrics?.planDuration.observe({ engine: run.engine, outcome: "planned" }, share);
    // The group read once for the batch; a run followed by another of the batch is not its group's last (that one
    // is still running, begun above): only the batch's last run counts what is left, queues the report, drops the export.
    const group = begun.length ? getGroup(deps.pool, begun[0]!.group_id) : undefined;
    group?.catch(() => undefined); // thrown where a run awaits it
    for (const [i, run] of begun.entries()) {
      try {
        await planAndReport(deps, run, job, gh, attempt, jobStart, async () => undefined, { plan: given.get(run.id), group: group!, moreAfter: i < begun.length - 1 });
      } catch (error) {
        failure ??= { error };
      }
    }
  } finally {
    await held.release();
  }
  return { left: runIds.filter((id) => !begun.some((r) => r.id === id) && !handedBack.includes(id)), failure };
}

/**
 * Ends the batch's entry early: before its next project (`stop`) once a job
 * more urgent than the batch waits (none is for a group's first job, of
 * priority 0), even after a halving; halfway through the projects not yet
 * begun (`halve`) once one of this process's sandbox lanes has stood
 * idle for a look's time with no job in the queue to take it. The half
 * handed back then plans beside this one, rather than a PR's last projects
 * waiting for one lane while another idles.
 */
function watchForTurns(deps: WorkerDeps, job: PlanProjectPayload, stop: AbortController, halve: AbortController): { end(): Promise<void> } {
  const priority = job.priority;
  const urgentMatters = priority !== undefined && priority > 0;
  // In a repository slot's queue the half handed back would wait for the very slot this batch holds.
  const lanes = deps.repoConcurrency ? undefined : deps.sandbox.lanes;
  const mine = runningJob.getStore();
  if (!urgentMatters && !lanes) return { end: async () => undefined };
  let watching = true;
  let idleSince: number | undefined;
  let wake = () => {};
  // A job queued anywhere (the queue's notification of it, which comes once it is committed) is looked at at once.
  const onQueued = ({ message }: { message: { channel: string } }) => message.channel === "jobs:insert" && wake();
  deps.queueEvents?.on("pool:listen:notification", onQueued);
  const loop = (async () => {
    while (watching && !stop.signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, URGENT_POLL_MS);
        wake = () => (clearTimeout(timer), resolve());
      });
      if (!watching) break;
      if (urgentMatters && (await urgentWaiting(deps, turnOf(job)).catch(() => false))) stop.abort();
      // Only once the entry holds its own lane: before, the lane it is about to take looks idle.
      else if (lanes && (lanes.idle() === 0 || !mine || !lanes.heldBy(mine))) idleSince = undefined;
      else if (lanes && idleSince === undefined) idleSince = performance.now();
      else if (lanes && !halve.signal.aborted && performance.now() - idleSince! >= URGENT_POLL_MS && !(await jobWaiting(deps.pool, EXPRESS_TASKS).catch(() => true))) halve.abort();
    }
  })();
  return {
    end: async () => {
      watching = false;
      deps.queueEvents?.off("pool:listen:notification", onQueued);
      wake();
      await loop;
    },
  };
}

/** Opens the runs over the group's export, each in a workspace of `root`'s, and plans them in one sandbox entry. */
async function planCandidatesTogether(deps: WorkerDeps, runs: Run[], job: PlanProjectPayload, gh: GitHub, root: string, stop: AbortSignal, halve: AbortSignal): Promise<TogetherOutcome[]> {
  const first = runs[0]!;
  const [owner, name] = first.repo.split("/") as [string, string];
  const shared = await deps.exports.acquire(exportKey(first, job), { owner, name }, first.sha, () => gh.cloneToken());
  try {
    const deadline = deps.sandbox.clock.now() + deps.jobTimeoutMs;
    // The runs' workspaces in one folder (the entry's), their out dirs beside it where the sandbox sees none.
    const work = path.join(root, "work");
    await mkdir(work, { recursive: true });
    const parts: (TogetherPart | undefined)[] = [];
    for (const run of runs) {
      const opened = await deps.runs.open({ checkout: { shared: shared.tree, workDir: path.join(work, String(run.id)) }, project: runProject(run), phase: "plan", reason: "pull_request", deadline });
      const prepared = opened.ok ? await opened.run.prepare() : undefined;
      parts.push(opened.ok && prepared?.ok && prepared.units.length === 1 ? { run: opened.run, unit: prepared.units[0]!, step: { outDir: path.join(root, "out", String(run.id)) } } : undefined);
    }
    const present = parts.filter((p): p is TogetherPart => p !== undefined);
    const planned = await deps.runs.planTogether(work, present, stop, halve);
    return parts.map((p) => (p ? planned[present.indexOf(p)]! : "alone"));
  } finally {
    shared.release();
  }
}

/** Runs one project's plan end to end: audit, sandboxed terraform, stored result, and the group's report queued once it is done. */
async function planRun(deps: WorkerDeps, runId: number, job: PlanProjectPayload, attempt: { number: number; max: number }): Promise<void> {
  const jobStart = performance.now();
  const found = await getRun(deps.pool, runId);
  if (!found) throw new Error(`run ${runId} does not exist`);
  const run = found;
  deps = { ...deps, log: deps.log.child({ repo: run.repo, pr: run.pull_number, project: run.project, workspace: run.workspace }) };
  // The PR moved on to a newer head before this run began: it is not planned, and its slot goes to the newer head's plans.
  if (await skipSupersededRun(deps.pool, run.id)) {
    await reportWhenDone(deps, run.group_id, job.installationId);
    await discardWhenGroupDone(deps, exportKey(run, job), run.group_id);
    return;
  }
  // Plans and applies of one project never overlap, whichever process runs them. A plan that would wait
  // long for another's lock (an apply running) gives its worker slot back and comes again shortly.
  const held = await acquireProjectLocks(deps.pool, [{ repo: run.repo, project: run.project, workspace: run.workspace }], { waitMs: LOCK_WAIT_MS });
  if (!held) return planAgainLater(deps, run, job);
  let locked = true;
  const unlock = async () => {
    if (!locked) return;
    locked = false;
    await held.release();
  };
  // A run already running is another job's (a repeated trigger queued it again), unless this job is a retry of the
  // one that began it or the run was left behind (running for longer than any job may take).
  let start: Awaited<ReturnType<typeof startRun>>;
  try {
    start = await inTransaction(deps.pool, async (tx) => {
      const begun = await startRun(tx, run.id, { takeOver: attempt.number > 1 || leftBehind(deps, run) });
      if (begun.how === "started") await appendAuditEvent(tx, { action: "plan.started", actor: "plangate", ...auditFields(run), details: { dir: run.dir, engine: run.engine } });
      return begun;
    });
  } catch (error) {
    await unlock();
    throw error;
  }
  const gh = await deps.github.forInstallation(job.installationId).catch(async (error) => {
    await unlock();
    throw error;
  });
  if (start.how !== undefined) return planAndReport(deps, run, job, gh, attempt, jobStart, unlock);
  try {
    await unlock();
    // Another job is planning it: this one comes back shortly, to find it finished (and end) or left behind (and plan it).
    if (start.was === "running") return await planAgainLater(deps, run, job, "another job is planning the run");
    await reportWhenDone(deps, run.group_id, job.installationId);
  } finally {
    await discardWhenGroupDone(deps, exportKey(run, job), run.group_id);
  }
}

/** A run begun by a batch: its plan if the shared entry made it, its group as the batch read it, whether another of the batch follows it. */
interface InBatch {
  plan?: UnitPlan;
  group: Promise<RunGroup>;
  moreAfter: boolean;
}

/**
 * Plans a run this job started (or stores its plan made in a batch's shared
 * entry), then queues the group's report once the group is done.
 */
async function planAndReport(deps: WorkerDeps, run: Run, job: PlanProjectPayload, gh: GitHub, attempt: { number: number; max: number }, jobStart: number, unlock: () => Promise<void>, batch?: InBatch): Promise<void> {
  // The changes this job stored, handed to the report rather than read back, and the PR's comments if looked up early.
  let planned: Planned = {};
  const workRoot = path.join(deps.dataDir, "runs", String(run.id));
  try {
    planned = await planStartedRun(deps, run, job, gh, workRoot, attempt, jobStart, unlock, batch);
    // The report is a job of its own, queued once the group is done: this job, and the project's queue, end without waiting for GitHub.
    // The comment is what the PR's author waits for: the clean-up below comes after it is queued.
    if (!batch?.moreAfter) await reportWhenDone(deps, run.group_id, job.installationId, { known: planned.stored && new Map([[run.id, planned.stored]]), comments: planned.comments, ahead: planned.ahead });
  } finally {
    await unlock();
    // The group's export goes once none of its runs is left to plan (a retried run is still running), whichever process plans them.
    await Promise.all([rm(workRoot, { recursive: true, force: true }), batch?.moreAfter ? undefined : discardWhenGroupDone(deps, exportKey(run, job), run.group_id), planned.output?.()]);
  }
}

/**
 * How long a plan waits in its worker slot for its project's lock (a short
 * apply ends meanwhile), and, past that, how long until it comes again
 * having given the slot back.
 */
export const LOCK_WAIT_MS = 2000;
export const LOCKED_PLAN_DELAY_MS = 1000;

/** How long past PLANGATE_JOB_TIMEOUT a run may stay `running` before a job takes it over: no job still plans it. */
const LEFT_BEHIND_AFTER_MS = 60_000;
const leftBehind = (deps: WorkerDeps, run: Run) => run.status === "running" && run.started_at !== null && Date.now() - new Date(run.started_at).getTime() > deps.jobTimeoutMs + LEFT_BEHIND_AFTER_MS;

/** The same job again, shortly, in the project's queue: this one ends, and its worker slot takes other work meanwhile. */
async function planAgainLater(deps: WorkerDeps, run: Run, job: PlanProjectPayload, why = "the project is locked by a running apply"): Promise<void> {
  deps.log.info({ runId: run.id }, `${why}: the plan comes again shortly`);
  const payload: PlanProjectPayload = { runId: run.id, installationId: job.installationId, exportKey: job.exportKey, priority: job.priority };
  await enqueue(deps.pool, { task: TASKS.planProject, payload, queueName: projectQueue(run.repo, run.project, run.workspace, deps.repoConcurrency), jobKey: `plan-run:${run.id}`, maxAttempts: 3, runAt: new Date(Date.now() + LOCKED_PLAN_DELAY_MS), priority: job.priority });
}

/** What a planned run hands its report: the changes it stored, the PR's plan comments when it looked them up. */
interface Planned {
  stored?: PlanChanges;
  comments?: Promise<MarkedComments | undefined>;
  /** Stores the run's output (a successful plan's, after its report). */
  output?: () => Promise<void>;
  /** The group's comment, rendered while the plan was stored (this run being the group's last). */
  ahead?: RenderedAhead;
}

/** Whether this run is the last of its group still to finish (a PR's: other groups report nothing on a PR). */
function lastOfGroup(deps: WorkerDeps, run: Run): Promise<boolean> | undefined {
  if (run.pull_number === null) return undefined;
  const last = unfinishedRunCount(deps.pool, run.group_id).then((left) => left <= 1);
  last.catch(() => undefined); // thrown where it is awaited
  return last;
}

/**
 * The PR's plan comments, looked up while the run is stored when it is the
 * last run of its group to finish (the report then finds them at hand);
 * undefined otherwise.
 */
function commentsIfLast(gh: GitHub, run: Run, last: Promise<boolean> | undefined): Promise<MarkedComments | undefined> | undefined {
  if (!last || run.pull_number === null) return undefined;
  const [owner, name] = run.repo.split("/") as [string, string];
  const pullNumber = run.pull_number;
  const comments = last.then((isLast) => (isLast ? gh.findComments({ owner, name }, pullNumber, PLAN_MARKER) : undefined));
  comments.catch(() => undefined); // thrown where the report awaits it
  return comments;
}

/**
 * The group's results as its report reads them (loadGroupResults), read while
 * this run's plan is parsed when it is the group's last: the other runs are
 * finished, this one is not yet, nor is its plan stored.
 */
async function resultsIfLast(deps: WorkerDeps, run: Run, last: Promise<boolean> | undefined, group: Promise<RunGroup>): Promise<GroupResults | undefined> {
  if (!deps.commentRenderer || !last || !(await last)) return undefined;
  return loadGroupResults(deps.pool, run.group_id, undefined, { group: await group });
}

/**
 * Starts rendering the group's comment as it will read once this run's plan
 * is stored (the renderer's own thread works while this one stores it). The
 * report compares it with what it reads after the commit and renders again
 * on any difference (another run finished meanwhile).
 */
function renderAhead(deps: WorkerDeps, run: Run, changes: PlanChanges, policy: RunPolicy, results: GroupResults): RenderedAhead | undefined {
  if (results.runs.some((r) => r.id !== run.id && (r.status === "queued" || r.status === "running"))) return undefined;
  const runs = results.runs.map((r) => (r.id === run.id ? { ...r, status: "succeeded" as const, error: null, output: null, policy } : r));
  const report = planReportOf({ group: results.group, runs, changes: new Map([...results.changes, [run.id, changes]]) }, deps.runLinks?.url(run.group_id));
  const bodies = deps.commentRenderer!.render(report, { maxParts: deps.maxComments });
  bodies.catch(() => undefined); // the report then renders it itself
  return { report, bodies };
}

/** Plans a run this job started and stores its result (a system error is retried, then stored as the run's failure). */
async function planStartedRun(deps: WorkerDeps, run: Run, job: PlanProjectPayload, gh: GitHub, workRoot: string, attempt: { number: number; max: number }, jobStart: number, unlock: () => Promise<void>, batch?: InBatch): Promise<Planned> {
  const given = batch?.plan;
  try {
    const timer = given ? undefined : deps.metrics?.planDuration.startTimer({ engine: run.engine });
    let overheadSeen = false;
    const started = () => {
      if (overheadSeen) return;
      overheadSeen = true;
      deps.metrics?.planOverhead.observe({ engine: run.engine }, (performance.now() - jobStart) / 1000);
    };
    // The run's group, read once for the job (the credentials' identity, the policies' context), when first needed.
    let read: Promise<RunGroup> | undefined = batch?.group;
    const group = () => (read ??= getGroup(deps.pool, run.group_id));
    const outcome = given ?? (await plan(deps, run, job, gh, workRoot, started, group));
    timer?.({ outcome: outcome === "expanded" || ("ok" in outcome && outcome.ok) ? "planned" : "failed" });
    if (outcome === "expanded") return {};
    // The PR's comments are looked up (and its comment rendered) while the outcome is stored, when this run is its group's last.
    const last = batch?.moreAfter && run.pull_number !== null ? Promise.resolve(false) : lastOfGroup(deps, run);
    const comments = commentsIfLast(gh, run, last);
    const recorded = await recordOutcome(deps, run, outcome, last, group);
    // The lock goes once the result is stored: a run `running` without its lock is one whose job died, which a retry may take over.
    await unlock();
    return { ...recorded, comments };
  } catch (error) {
    // Over an input limit (the commit's export past PLANGATE_MAX_COMMIT_SIZE): the same again on every attempt.
    if (error instanceof InputRefused) {
      await recordOutcome(deps, run, { stage: "plangate", message: error.message });
      return {};
    }
    if (attempt.number < attempt.max) throw error;
    deps.log.error({ runId: run.id, err: error }, "plan failed with a system error");
    await recordOutcome(deps, run, { stage: "plangate", message: failureText(deps, { kind: "system", message: (error as Error).message }) });
    return {};
  }
}

/**
 * What the group's policies (the base branch's, the organisation's, any the
 * PR adds) find in this plan; the overrides given on the PR are read only
 * when something blocks, and hold only for this very change (fingerprint).
 */
async function judgeRun(deps: WorkerDeps, run: Run, group: RunGroup, changes: PlanChanges, fingerprint: string): Promise<PlanJudgement> {
  const context = {
    project: { name: run.project, dir: run.dir, workspace: run.workspace, engine: run.engine },
    pull_request: run.pull_number === null ? null : { number: run.pull_number, author: group.author ?? "", labels: group.labels ?? [], base: group.pull_base ?? group.base_ref ?? "", head_sha: run.sha },
  };
  const judgement = judgePlan(group.policies, changes, context);
  if (run.pull_number === null || !judgement.policy.outcomes.some(isBlocking)) return judgement;
  const key = { project: run.project, workspace: run.workspace, fingerprint };
  return overruled(judgement, key, await pullOverrides(deps.pool, run.repo, run.pull_number));
}

/** The storing of a run's output (masked), for later: a function of the output alone (see maskedLater). */
const outputLater = (deps: WorkerDeps, runId: number, output: () => string) => () => storeRunOutput(deps.pool, runId, output());

/**
 * Stores a project's result; for a plan, returns the changes it stored and
 * the storing of terraform's output (megabytes for thousands of resources,
 * shown on the run page, not in the comment): left for after the report.
 */
async function recordOutcome(deps: WorkerDeps, run: Run, outcome: UnitPlan | RunFailure, last?: Promise<boolean>, groupOf: () => Promise<RunGroup> = () => getGroup(deps.pool, run.group_id)): Promise<Pick<Planned, "stored" | "output" | "ahead">> {
  const mask = maskerFor(deps, runEnvNames(run));
  if ("ok" in outcome && outcome.ok) {
    // Read while the plan is parsed.
    const group = groupOf();
    const results = resultsIfLast(deps, run, last, group);
    for (const read of [group, results]) read.catch(() => undefined); // thrown where awaited
    const changes = outcome.changes();
    const sealed = outcome.sealed();
    const fingerprint = outcome.fingerprint();
    const judgement = await judgeRun(deps, run, await group, changes, fingerprint);
    const groupResults = judgement.blocked ? undefined : await results.catch(() => undefined);
    const ahead = groupResults && renderAhead(deps, run, changes, judgement.policy, groupResults);
    // A run that is not its group's last has no report waiting on it: its output goes with its result, one write fewer.
    const notLast = last !== undefined && !(await last.catch(() => true));
    const inlineOutput = notLast && !judgement.blocked ? outcome.output() : undefined;
    const succeeded = await inTransaction(deps.pool, async (tx) => {
      await storePlan(tx, run.id, sealed, changes, fingerprint);
      // A passing run is finished before its audit events take the chain's writer lock (held until commit): its output is written first.
      if (!judgement.blocked) await finishRun(tx, run.id, { status: "succeeded", summary: changes.counts, policy: judgement.policy, output: inlineOutput });
      await appendAuditEvent(tx, { action: "plan.succeeded", actor: "plangate", ...auditFields(run), details: { ...changes.counts } });
      // Each policy that matched, whatever its effect, and each rule that could not be evaluated.
      for (const o of judgement.policy.outcomes) {
        const { owners: _owners, ...found } = o;
        await appendAuditEvent(tx, { action: "policy.violated", actor: "plangate", ...auditFields(run), details: { ...found, fingerprint } });
      }
      const { violations } = judgement;
      if (!judgement.blocked) return true;
      // A policy violation fails the project: its plan stays visible, it can never be approved or applied (unless an owner overrides a deny).
      const message = failureText(deps, { kind: "policy", count: violations.length + judgement.policy.outcomes.filter(isBlocking).length });
      await finishRun(tx, run.id, { status: "failed", summary: changes.counts, output: outcome.output(), error: { stage: "policy", message, violations }, policy: judgement.policy });
      if (violations.length) await appendAuditEvent(tx, { action: "policy.violated", actor: "plangate", ...auditFields(run), details: { violations } });
      return false;
    });
    return { stored: changes, output: succeeded && inlineOutput === undefined ? outputLater(deps, run.id, outcome.output) : undefined, ahead };
  }
  const failure: RunFailure =
    "ok" in outcome
      ? {
          tool: outcome.tool,
          stage: outcome.stage,
          message: failureMessage(outcome, failureText(deps, { kind: "timeout", duration: describeDuration(deps.jobTimeoutMs) })),
          timedOut: outcome.timedOut,
        }
      : { ...outcome };
  const output = mask(outcome.output ?? "");
  delete failure.output;
  failure.message = mask(failure.message);
  await inTransaction(deps.pool, async (tx) => {
    await finishRun(tx, run.id, { status: "failed", output, error: failure });
    await appendAuditEvent(tx, { action: "plan.failed", actor: "plangate", ...auditFields(run), details: { ...failure } });
    if (failure.stage === "config") await appendAuditEvent(tx, { action: "config.invalid", actor: "plangate", ...auditFields(run), details: { ...failure } });
  });
  return {};
}
