import type { Run } from "../db/runs.js";
import type { RunGroup } from "../db/run-groups.js";
import type { GitHub } from "../github/github.js";
import { effectiveRules, type BaseRules, type ProjectRules } from "../settings/rules.js";
import type { WorkerDeps } from "./deps.js";
import { loadBaseRules, loadBranchRules } from "./plan/load-projects.js";

const repoOf = (group: Pick<RunGroup, "repo">) => {
  const [owner, name] = group.repo.split("/") as [string, string];
  return { owner, name };
};

/** The rules of the default branch (the group's base_ref) as it stands now (for reviews and /apply). */
export async function baseRulesNow(deps: WorkerDeps, gh: GitHub, group: RunGroup): Promise<BaseRules> {
  if (group.base_ref) return loadBranchRules(deps.mirrors, repoOf(group), group.base_ref, () => gh.cloneToken());
  // A plan from before rules were read from the base: only the built-in rules are known to be the base's.
  return { sha: group.base_sha ?? "", state: "none" };
}

/** The rules of the repository's default branch as it stands now. */
export async function defaultBranchRules(deps: WorkerDeps, gh: GitHub, group: Pick<RunGroup, "repo">, defaultBranch: string): Promise<BaseRules> {
  return loadBranchRules(deps.mirrors, repoOf(group), defaultBranch, () => gh.cloneToken());
}

/** The rules the plan was made under (the base commit read at plan time). */
export async function baseRulesAtPlan(deps: WorkerDeps, gh: GitHub, group: RunGroup): Promise<BaseRules> {
  if (!group.base_sha) return baseRulesNow(deps, gh, group);
  return loadBaseRules(deps.mirrors, repoOf(group), group.base_sha, () => gh.cloneToken());
}

/**
 * For a merge: the base as it stood before the PR landed (never the merge
 * commit, nor, after a rebase merge, one of the PR's own replayed commits).
 */
export async function baseRulesBeforeMerge(deps: WorkerDeps, gh: GitHub, group: RunGroup, mergeSha: string): Promise<BaseRules> {
  const token = () => gh.cloneToken();
  return loadBaseRules(deps.mirrors, repoOf(group), await deps.mirrors.landedOn(repoOf(group), mergeSha, group.sha, token), token);
}

/** A planned run's effective rules under `base`, tightened by the PR's file where it listed the project. */
export const rulesOf = (base: BaseRules, group: RunGroup, run: Run): ProjectRules => effectiveRules(base, run.config, group.config_from_file).rules;
