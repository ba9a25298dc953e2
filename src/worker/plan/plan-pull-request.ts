import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { earlierPlans, reusePlans, type EarlierRun } from "../../db/plan-reuse.js";
import { mayReuse } from "../../projects/reuse.js";
import type { PolicyConfig, ProjectConfig } from "../../settings/repo-config.js";
import type { ProjectRules } from "../../settings/rules.js";
import { appendAuditEvent, appendAuditEvents, type AuditEvent } from "../../audit/audit-log.js";
import { inTransaction } from "../../db/pool.js";
import { registerDriftRepo } from "../../db/drift.js";
import { acquireLocks } from "../../db/locks.js";
import type { Queryable } from "../../db/pool.js";
import { finishRun, groupRunKeys, type RunKey } from "../../db/runs.js";
import { createRunGroup, latestPlanGroup } from "../../db/run-groups.js";
import type { CommitExport } from "../../git/commit-exports.js";
import type { CommitReader } from "../../git/commit-reader.js";
import { fullName, PullFilesCut, type GitHub, type PullRequestInfo, type RepoRef } from "../../github/github.js";
import { enqueue, enqueueAll, TASKS, type OpenPlanCheckPayload, type PlanPullRequestPayload } from "../../jobs/jobs.js";
import { planProjectJobs } from "../../jobs/plan-jobs.js";
import { selectProjects } from "../../projects/affected.js";
import { unplannedProjects, type Unplanned } from "../../projects/unplanned.js";
import { plannedOnHead } from "../../db/runs.js";
import { markerLine, PLAN_MARKER } from "../../github/markers.js";
import { checkSummary, checkTitle } from "../../render/templates.js";
import { CONFIG_FILE, type ConfigProblem } from "../../settings/load-repo-config.js";
import { ORG_POLICY_FILE } from "../../settings/org-policy-file.js";
import type { OrgPolicies } from "../org-policies.js";
import type { WorkerDeps } from "../deps.js";
import { readPullInputs, type PullInputs } from "./load-projects.js";
import { effectivePolicies, effectiveRules, projectsWithRuleChanges, ruleChanges } from "../../settings/rules.js";
import { PLAN_CHECK, reportWhenDone } from "./report-plan.js";
import { discardWhenGroupDone } from "./export-lifetime.js";
import { APPROVAL_CHECK } from "../approval/approval-check.js";

export { PLAN_CHECK } from "./report-plan.js";

/** A push's plan that starts within this long of its event fetches the pushed head before asking GitHub for the PR. */
const EARLY_FETCH_WITHIN_MS = 2000;

/** How long a plan runs before `plangate/plan` shows it in progress: a quicker plan's first GitHub write is its comment. */
export const PLAN_CHECK_AFTER_MS = 1000;

/** A broken .plangate.yml: a failed `plangate/plan`, a comment naming each place, and an audit event. Nothing else runs. */
async function reportConfigError(deps: WorkerDeps, gh: GitHub, repo: RepoRef, job: PlanPullRequestPayload, problems: ConfigProblem[]): Promise<void> {
  const { pull } = job;
  const listed = problems.map((p) => ({ where: `${CONFIG_FILE}:${p.line}:${p.column}`, message: p.message }));
  const body = deps.templates.render("config-error", { marker: markerLine(PLAN_MARKER), file: CONFIG_FILE, shortSha: pull.headSha.slice(0, 7), problems: listed });
  await gh.syncComments(repo, pull.number, PLAN_MARKER, [body]);
  await gh.createCheckRun(repo, PLAN_CHECK, pull.headSha, {
    status: "completed",
    conclusion: "failure",
    output: { title: checkTitle(deps.templates, "plan-config-invalid", { file: CONFIG_FILE }), summary: checkSummary(deps.templates, "plan-config-invalid", { problems: listed }) },
  });
  await inTransaction(deps.pool, (tx) =>
    appendAuditEvent(tx, { action: "config.invalid", actor: "plangate", repo: fullName(repo), pullNumber: pull.number, sha: pull.headSha, details: { problems: listed } }),
  );
}

/**
 * Reads the repository's config at the PR head, selects the projects to plan
 * and queues one job per project, plus the job that opens `plangate/plan` in
 * progress if planning is still running a moment later.
 */
export async function planPullRequest(deps: WorkerDeps, job: PlanPullRequestPayload): Promise<void> {
  const repo = { owner: job.pull.owner, name: job.pull.repo };
  const gh = await deps.github.forInstallation(job.pull.installationId);
  const token = () => gh.cloneToken();
  // A push planned moments after it arrived: its head is new to the mirror and most likely still the PR's, so its fetch
  // begins at once, beside the lookups below. A push that waited in the queue (a burst: many are stale by now), a
  // retry and any other plan ask GitHub for the PR's head first, then the mirror, and fetch only what it lacks.
  const pushed = job.action === "opened" || job.action === "synchronize";
  const fresh = job.receivedAt !== undefined && Date.now() - job.receivedAt < EARLY_FETCH_WITHIN_MS;
  const headFetched = pushed && fresh ? deps.mirrors.fetchCommits(repo, [job.pull.headSha], undefined, token) : undefined;
  headFetched?.catch(() => undefined); // thrown where it is awaited
  // The PR as it is now: events arrive late and out of order.
  // Beside it, the default branch's head (whose rules apply, whatever branch the PR targets) when the event names it.
  const pulled = gh.getPull(repo, job.pull.number);
  const baseAsked = job.pull.defaultBranch === undefined ? undefined : gh.branchSha(repo, job.pull.defaultBranch);
  for (const asked of [pulled, baseAsked]) asked?.catch(() => undefined); // thrown where it is awaited
  let reader: CommitReader | undefined;
  let baseFetched: Promise<void> | undefined;
  let early: { key: string; made: Promise<CommitExport> } | undefined;
  try {
    // One reader of the mirror for every read of this plan, opened while GitHub answers: it says which commits the mirror
    // still lacks (usually none but a push's head, being fetched; the base branch's head when it moved since the last plan).
    const opened = (await deps.mirrors.reader(repo)).reader;
    reader = opened;
    // Beside a pushed head's early fetch, the base branch's head is fetched (when the mirror lacks it) as soon as GitHub
    // names it, not after the PR's lookup. Any other plan fetches both in one request once it knows its head.
    baseFetched = headFetched && baseAsked?.then((sha) => deps.mirrors.fetchCommits(repo, [sha], opened, token));
    baseFetched?.catch(() => undefined); // thrown where it is awaited
    const current = await pulled;
    if (current.state !== "open") {
      deps.log.info({ sha: job.pull.headSha, state: current.state }, "not planned: the PR is closed");
      return;
    }
    // The PR has moved on since this event (it came late, or a burst of pushes was folded into one job): plan the head it has now, once.
    // A push's own event is late too when an older event's job has planned its head already. A reopened PR plans again (closing used up its plans).
    const late = current.headSha !== job.pull.headSha || (job.action !== undefined && job.action !== "reopened");
    if (late && (await latestPlanGroup(deps.pool, fullName(repo), job.pull.number, current.headSha))) {
      deps.log.info({ sha: job.pull.headSha, head: current.headSha }, "not planned: the PR's head is planned already");
      return;
    }
    const baseSha = await (baseAsked ?? gh.branchSha(repo, current.defaultBranch));
    let groupId: number | undefined;
    try {
      const fetchingHead = headFetched && current.headSha === job.pull.headSha;
      const lacking = deps.mirrors.fetchCommits(repo, [...(fetchingHead ? [] : [current.headSha]), ...(baseFetched ? [] : [baseSha])], opened, token);
      const fetched = allFetched([fetchingHead ? headFetched : undefined, baseFetched, lacking]);
      // The project jobs' export of the commit begins once it is fetched, while its config is read: a job of this process
      // finds it made. It is measured through this plan's reader, which has read the same commit's files by then.
      const key = `${job.pull.number}-${current.headSha}-${randomUUID()}`;
      early = { key, made: fetched.then(() => deps.exports.acquire(key, repo, current.headSha, token, opened)) };
      early.made.catch(() => undefined); // the project jobs make it again
      groupId = await planHead(deps, job, gh, current, fetched.then(() => readPullInputs(opened, current.headSha, baseSha)), key);
    } finally {
      if (early) {
        const { key, made } = early;
        void settleEarlyExport(deps, made, key, groupId).catch((error) => deps.log.warn({ err: error, key }, "could not let go of a plan's export"));
      }
    }
  } finally {
    // A fetch begun for a head or a base that is not planned after all (the PR closed or moved on, a lookup failed) ends with the job.
    await Promise.all([headFetched?.catch(() => undefined), baseFetched?.catch(() => undefined)]);
    // The reader goes once nothing reads through it: the early export may still be measuring the commit.
    const close = () => reader?.close();
    if (early) void early.made.then(close, close);
    else close();
  }
}

/** Waits for every fetch, even when one fails (none is left running past the job); throws the first failure. */
async function allFetched(fetches: (Promise<void> | undefined)[]): Promise<void> {
  const settled = await Promise.allSettled(fetches);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
}

/**
 * Lets go of the export begun for the project jobs: it goes at once when no
 * job was queued, else once the group is done (see discardWhenGroupDone).
 */
async function settleEarlyExport(deps: WorkerDeps, early: Promise<CommitExport>, key: string, groupId: number | undefined): Promise<void> {
  const made = await early.catch(() => undefined);
  made?.release();
  if (!made) return;
  if (groupId === undefined) return deps.exports.discard(key);
  await discardWhenGroupDone(deps, key, groupId);
}

/**
 * Plans the PR's current head, once fetched with its base branch: reads the
 * config (the rules from the base branch as it stands now, never from the
 * PR: DESIGN.md section 2), selects the projects and queues their jobs.
 * Returns the plan group when project jobs were queued.
 */
async function planHead(deps: WorkerDeps, job: PlanPullRequestPayload, gh: GitHub, current: PullRequestInfo, inputs: Promise<PullInputs>, exportKey: string): Promise<number | undefined> {
  const repo = { owner: job.pull.owner, name: job.pull.repo };
  const listed = gh.listPullFiles(repo, job.pull.number).catch((error: unknown) => (error instanceof PullFilesCut ? error : Promise.reject(error)));
  // The organisation's policies (PLANGATE_POLICY_REPO) are asked for beside the config; never throws.
  const organisation = deps.orgPolicies?.current();
  const [{ loaded, base, baseProjects }, changed] = await Promise.all([inputs, listed]);
  // A re-run requested from a check run does not say who wrote the PR or where it merges; approvals and rules need both.
  const pull = { ...job.pull, headSha: current.headSha, author: job.pull.author || current.author, baseRef: job.pull.baseRef ?? current.baseRef, defaultBranch: job.pull.defaultBranch ?? current.defaultBranch };
  if (changed instanceof PullFilesCut) {
    await reportFilesCut(deps, gh, repo, pull, changed.limit);
    return undefined;
  }
  if (!loaded.ok) {
    await reportConfigError(deps, gh, repo, { ...job, pull }, loaded.problems);
    return undefined;
  }
  // A base config that schedules drift checks puts the repository on the drift scan's list.
  if (base.config && (base.config.defaults?.drift || base.config.projects.some((p) => p.drift))) await registerDriftRepo(deps.pool, fullName(repo), pull.installationId);
  // A PR that changes a project's rules (or what all share) plans that project too: its approvers approve their new bar.
  const selected = selectProjects(loaded.config.projects, changed, loaded.moduleCalls, job.selection);
  const ruleChanged = job.selection.mode === "autoplan" ? projectsWithRuleChanges(base, loaded.config).filter((p) => !selected.includes(p)) : [];
  const projects = [...selected, ...ruleChanged];
  // Projects the PR changes that this plan leaves out (autoplan off, a narrow when_modified, a /plan of another
  // project) and no plan of the head covers yet: the checks wait for them (DESIGN.md section 3, "Nothing changes unplanned").
  const planned = await plannedOnHead(deps.pool, fullName(repo), pull.number, pull.headSha);
  const unplanned = unplannedProjects({ head: { projects: loaded.config.projects, moduleCalls: loaded.moduleCalls }, base: baseProjects, changed, selected: projects }).filter((u) => !planned.has(`${u.name}\0${u.workspace}`));
  if (!projects.length) {
    if (job.selection.mode === "command") {
      const { selector } = job.selection;
      const selectorText = [selector.project && `-p ${selector.project}`, selector.dir && `-d ${selector.dir}`, selector.workspace && `-w ${selector.workspace}`].filter(Boolean).join(" ");
      await gh.createComment(repo, pull.number, deps.templates.render("command-reply", { reason: "no-projects", command: "plan", selectorText, known: loaded.config.projects.map((p) => p.name) }));
      return undefined;
    }
    if (unplanned.length) {
      await reportUnplanned(deps, gh, repo, pull, unplanned);
      return undefined;
    }
    // Both checks branch protection may require are answered: a PR that changes no project never waits on plangate.
    for (const name of [PLAN_CHECK, APPROVAL_CHECK]) {
      await gh.createCheckRun(repo, name, pull.headSha, {
        status: "completed",
        conclusion: "neutral",
        output: { title: checkTitle(deps.templates, "plan-nothing"), summary: checkSummary(deps.templates, "plan-nothing") },
      });
    }
    return undefined;
  }
  // Without the organisation's policies nothing is planned: each project fails saying why (fail closed).
  const org = await organisation;
  const unpoliced = org && !org.ok ? org : undefined;
  if (unpoliced) deps.log.warn({ policyRepo: unpoliced.repo, problem: unpoliced.problem }, "the organisation's policies cannot be read: the plan fails");
  const policies = effectivePolicies(base, loaded.config, org?.ok ? org.policies : []);
  const rulesOf = (p: (typeof projects)[number]) => effectiveRules(base, p, loaded.config.projectsListed).rules;
  // A push keeps the earlier plan of each project whose files, config, rules and policies (the organisation's too) did not change (DESIGN.md section 1).
  const reuse = job.selection.mode === "autoplan" && job.action === "synchronize" && !unpoliced ? await plansToReuse(deps, gh, repo, pull, projects, policies, rulesOf, loaded.moduleCalls, loaded.config.projects) : new Map<string, EarlierRun>();
  const { group, queuedAny } = await inTransaction(deps.pool, async (tx) => {
    const created = await createRunGroup(
      tx,
      {
        kind: "plan", trigger_id: job.trigger, installation_id: pull.installationId, repo: fullName(repo), pull_number: pull.number, sha: pull.headSha, author: pull.author,
        policies, base_ref: pull.defaultBranch, base_sha: base.sha, config_from_file: loaded.config.projectsListed,
        rule_changes: ruleChanges(base, loaded.config, projects),
        unplanned,
        head_ref: current.headRepo === fullName(repo) ? current.headRef : null,
        labels: current.labels ?? [], pull_base: current.baseRef,
      },
      projects.map((p) => ({ project: p.name, dir: p.dir, engine: p.engine, workspace: p.workspace, config: p, rules: rulesOf(p) })),
    );
    // The jobs are queued with the group they plan: both or neither. A repeated trigger's group is as its first
    // delivery left it: its queued runs are queued again (their job keys keep one job each).
    const queued = created.created ? await bookNewRuns(deps, tx, created.runs, pull.number, unpoliced, reuse) : (await groupRunKeys(tx, created.group.id)).filter((r) => r.status === "queued");
    await enqueueAll(tx, planProjectJobs(created.group.repo, queued, { installationId: pull.installationId, exportKey }, { repoConcurrency: deps.repoConcurrency, maxBatch: deps.planBatch }));
    // The comment is the plan's first GitHub write; `plangate/plan` shows "in progress" only for a plan that takes a while.
    if (queued.length) {
      const payload: OpenPlanCheckPayload = { groupId: created.group.id, installationId: pull.installationId };
      await enqueue(tx, { task: TASKS.openPlanCheck, payload, jobKey: `open-plan-check:${created.group.id}`, runAt: new Date(Date.now() + PLAN_CHECK_AFTER_MS), maxAttempts: 3 });
    }
    return { group: created.group, queuedAny: queued.length > 0 };
  });
  // When every project was refused a lock or kept its earlier plan, no project job will report: the report job does,
  // out of this PR's queue (a slow GitHub holds the report, never the PR's next plan).
  if (!queuedAny) await reportWhenDone(deps, group.id, pull.installationId);
  return queuedAny ? group.id : undefined;
}

/**
 * The projects of this push whose earlier plan on the PR still stands: keyed
 * by name and workspace. The files changed since each earlier commit come
 * from the mirror; a commit it cannot read (force-pushed away) reuses nothing.
 */
async function plansToReuse(
  deps: WorkerDeps,
  gh: GitHub,
  repo: RepoRef,
  pull: { number: number; headSha: string },
  projects: ProjectConfig[],
  policies: PolicyConfig[],
  rulesOf: (p: ProjectConfig) => ProjectRules,
  moduleCalls: Map<string, Set<string>>,
  all: ProjectConfig[],
): Promise<Map<string, EarlierRun>> {
  const earlier = new Map((await earlierPlans(deps.pool, fullName(repo), pull.number, pull.headSha)).map((r) => [`${r.project}\0${r.workspace}`, r]));
  const reused = new Map<string, EarlierRun>();
  if (!earlier.size) return reused;
  const token = () => gh.cloneToken();
  const changedSince = new Map<string, Promise<string[] | undefined>>();
  const changed = (sha: string) => {
    if (!changedSince.has(sha)) changedSince.set(sha, deps.mirrors.changedBetween(repo, sha, pull.headSha, token).catch((error: unknown) => {
      deps.log.info({ err: error, from: sha, to: pull.headSha }, "an earlier plan's commit cannot be compared: its projects are planned again");
      return undefined;
    }));
    return changedSince.get(sha)!;
  };
  for (const project of projects) {
    const key = `${project.name}\0${project.workspace}`;
    const before = earlier.get(key);
    if (!before) continue;
    const samePolicies = isDeepStrictEqual(JSON.parse(JSON.stringify(before.group_policies)), JSON.parse(JSON.stringify(policies)));
    if (mayReuse({ project, rules: rulesOf(project), earlier: before, changed: await changed(before.sha), samePolicies, moduleCalls, projects: all })) reused.set(key, before);
  }
  return reused;
}

/**
 * Changed projects no plan of the head covers: `plangate/plan` and
 * `plangate/approval` wait in progress, their titles naming the `/plan` to run.
 */
async function reportUnplanned(deps: WorkerDeps, gh: GitHub, repo: RepoRef, pull: { number: number; headSha: string }, unplanned: Unplanned[]): Promise<void> {
  const view = { unplanned, first: unplanned[0], others: unplanned.length - 1, shortSha: pull.headSha.slice(0, 7) };
  for (const name of [PLAN_CHECK, APPROVAL_CHECK]) {
    await gh.createCheckRun(repo, name, pull.headSha, {
      status: "in_progress",
      output: { title: checkTitle(deps.templates, "plan-unplanned", view), summary: checkSummary(deps.templates, "plan-unplanned", view) },
    });
  }
}

/**
 * A PR whose file list GitHub cut: what it changes is unknown, so nothing is
 * planned and neither check can pass (DESIGN.md section 3, "Nothing changes unplanned").
 */
async function reportFilesCut(deps: WorkerDeps, gh: GitHub, repo: RepoRef, pull: { number: number; headSha: string }, limit: number): Promise<void> {
  const output = { title: checkTitle(deps.templates, "plan-files-cut", { limit }), summary: checkSummary(deps.templates, "plan-files-cut", { limit }) };
  await gh.createCheckRun(repo, PLAN_CHECK, pull.headSha, { status: "completed", conclusion: "failure", output });
  await gh.createCheckRun(repo, APPROVAL_CHECK, pull.headSha, { status: "in_progress", output });
  await inTransaction(deps.pool, (tx) =>
    appendAuditEvent(tx, { action: "plan.failed", actor: "plangate", repo: fullName(repo), pullNumber: pull.number, sha: pull.headSha, details: { stage: "files", limit } }),
  );
}

/**
 * A new group's runs (all queued): each takes its lock or is refused, then
 * keeps its earlier plan when one still stands (with its audit event); one
 * batch of writes each. Returns the runs left to plan.
 */
async function bookNewRuns(deps: WorkerDeps, tx: Queryable, runs: RunKey[], pullNumber: number, unpoliced: Extract<OrgPolicies, { ok: false }> | undefined, reuse: Map<string, EarlierRun>): Promise<RunKey[]> {
  const refused = await (unpoliced ? refuseUnpoliced(deps, tx, runs, pullNumber, unpoliced) : lockOrRefuse(deps, tx, runs, pullNumber));
  const open = runs.filter((run) => !refused.has(run.id));
  const reusing = open.flatMap((run) => {
    const earlier = reuse.get(`${run.project}\0${run.workspace}`);
    return earlier ? [{ run, earlier }] : [];
  });
  await reusePlans(tx, reusing.map(({ run, earlier }) => ({ runId: run.id, fromId: earlier.id })));
  await appendAuditEvents(tx, reusing.map(({ run, earlier }) => ({ action: "plan.succeeded", actor: "plangate", repo: run.repo, pullNumber, project: run.project, workspace: run.workspace, sha: run.sha, runId: run.id, details: { ...earlier.summary, reusedFrom: earlier.reused_from ?? earlier.sha, reusedRun: earlier.id } })));
  const reused = new Set(reusing.map(({ run }) => run.id));
  return open.filter((run) => !reused.has(run.id));
}

/** Fails the runs, which cannot be judged by the organisation's policies, saying why; they take no lock and plan nothing. */
async function refuseUnpoliced(deps: WorkerDeps, tx: Queryable, runs: RunKey[], pullNumber: number, org: Extract<OrgPolicies, { ok: false }>): Promise<Set<number>> {
  const message = deps.templates.render("org-policies-unavailable", { repo: org.repo, file: ORG_POLICY_FILE, shortSha: org.sha?.slice(0, 7), problem: org.problem }).trim();
  const details = { stage: "org-policies", policyRepo: org.repo, policySha: org.sha ?? null, problem: org.problem };
  for (const run of runs) await finishRun(tx, run.id, { status: "failed", output: "", error: { stage: "org-policies", message } });
  await appendAuditEvents(tx, runs.map((run) => ({ action: "plan.failed", actor: "plangate", repo: run.repo, pullNumber, project: run.project, workspace: run.workspace, sha: run.sha, runId: run.id, details })));
  return new Set(runs.map((r) => r.id));
}

/** Takes the projects' locks for this PR, all at once, failing each run whose lock another PR holds (naming it). Returns the runs refused. */
async function lockOrRefuse(deps: WorkerDeps, tx: Queryable, runs: RunKey[], pullNumber: number): Promise<Set<number>> {
  const refused = new Set<number>();
  if (!runs.length) return refused;
  const locks = await acquireLocks(tx, runs[0]!.repo, runs, pullNumber);
  const events: AuditEvent[] = [];
  for (const run of runs) {
    const lock = locks.get(`${run.project}\0${run.workspace}`)!;
    const fields = { actor: "plangate", repo: run.repo, pullNumber, project: run.project, workspace: run.workspace, sha: run.sha, runId: run.id };
    if (!lock.held) {
      const message = deps.templates.render("lock-refused", { project: run.project, workspace: run.workspace, holder: lock.holder }).trim();
      await finishRun(tx, run.id, { status: "failed", output: "", error: { stage: "lock", message } });
      events.push({ action: "plan.failed", ...fields, details: { stage: "lock", holder: lock.holder } });
      refused.add(run.id);
    } else if (lock.fresh) {
      events.push({ action: "lock.acquired", ...fields, details: {} });
    }
  }
  await appendAuditEvents(tx, events);
  return refused;
}
