import { latestPlanGroup } from "../../db/run-groups.js";
import type { Run } from "../../db/runs.js";
import type { GitHub } from "../../github/github.js";
import type { CommandPayload } from "../../jobs/jobs.js";
import { loadHeadPlans } from "../../db/head-plans.js";
import { approvalStatus } from "../approval/approval-status.js";
import { baseRulesNow } from "../base-rules.js";
import type { WorkerDeps } from "../deps.js";
import { applyGate } from "./apply-gate.js";
import { reviewedUnits } from "./apply-units.js";
import { answerEvenIfBroken, refuseApply, runApply, type ApplyContext, type Attempt } from "./run-apply.js";

/** /apply: the reviewed plans of the current head, through the apply gate, applied now under the base branch's current rules. */
export async function applyCommand(deps: WorkerDeps, gh: GitHub, job: CommandPayload, headSha: string, attempt: Attempt): Promise<void> {
  const ctx: ApplyContext = { trigger: job.trigger, installationId: job.installationId, repo: { owner: job.owner, name: job.repo }, pullNumber: job.number, sha: headSha, actor: job.actor, mode: "command", log: deps.log };
  await answerEvenIfBroken(deps, ctx, attempt, () => gateAndApply(deps, gh, ctx, job));
}

async function gateAndApply(deps: WorkerDeps, gh: GitHub, ctx: ApplyContext, job: CommandPayload): Promise<void> {
  const repoName = `${job.owner}/${job.repo}`;
  const headSha = ctx.sha;
  const { selector } = job;
  // -p NAME also selects the stacks of a cdktf program NAME (NAME/STACK).
  const matches = (run: Run) =>
    (selector.project === undefined || run.project === selector.project || run.project.startsWith(`${selector.project}/`)) &&
    (selector.dir === undefined || run.dir === selector.dir) &&
    (selector.workspace === undefined || run.workspace === selector.workspace);
  const group = await latestPlanGroup(deps.pool, repoName, job.number, headSha);
  const base = group && (await baseRulesNow(deps, gh, group));
  // The head's runs and plans, read once for the approvals and the units.
  const head = group && (await loadHeadPlans(deps.pool, group));
  const decision = applyGate({
    mode: "command",
    planned: !!group,
    everPlanned: !!group,
    status: group && base && head ? await approvalStatus(deps, gh, group, base, head) : undefined,
    units: group && base && head ? await reviewedUnits(deps, group, "command", base, matches, head) : [],
  });
  if (!decision.allow) return refuseApply(deps, ctx, decision.refusal);
  await runApply(deps, gh, { ...ctx, approvers: decision.approvers }, decision.units);
}
