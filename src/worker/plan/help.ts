import type { GitHub, PullRequestInfo, RepoRef } from "../../github/github.js";
import { CONFIG_FILE } from "../../settings/load-repo-config.js";
import type { ProjectConfig } from "../../settings/repo-config.js";
import { effectivePolicies, effectiveRules, type BaseRules, type ProjectRules } from "../../settings/rules.js";
import type { WorkerDeps } from "../deps.js";
import { loadPullInputs } from "./load-projects.js";

function approvalText(approvals: ProjectRules["approvals"]): string {
  const who = [...approvals.teams.map((t) => `team ${t}`), ...approvals.users].join(", ");
  const destroy = approvals.destroy_required !== undefined ? `; ${approvals.destroy_required} on destroy` : "";
  return `${approvals.required}${who ? ` from ${who}` : ""}${destroy}`;
}

/** /help's view of a project: its effective rules, each with where it came from. */
function helpProject(base: BaseRules, p: ProjectConfig, listed: boolean) {
  const { rules, sources } = effectiveRules(base, p, listed);
  return {
    ...p,
    approvalText: approvalText(rules.approvals),
    applyText: rules.apply,
    envText: rules.env.join(", "),
    dependsText: rules.depends_on.join(", "),
    sources,
  };
}

/** /help: the commands, and the repository's projects with their effective rules at the PR's head. */
export async function helpReply(deps: WorkerDeps, gh: GitHub, repo: RepoRef, pull: PullRequestInfo): Promise<string> {
  const token = () => gh.cloneToken();
  const { loaded, base } = await loadPullInputs(deps.mirrors, repo, pull.headSha, await gh.branchSha(repo, pull.defaultBranch), token);
  const rulesView = { baseRef: pull.defaultBranch, baseSha: base.sha.slice(0, 7), baseState: base.state, basePolicies: base.config?.policies.length ?? 0 };
  const view = loaded.ok
    ? {
        ...loaded.config,
        projects: loaded.config.projects.map((p) => helpProject(base, p, loaded.config.projectsListed)),
        policies: effectivePolicies(base, loaded.config),
      }
    : { problems: loaded.problems.map((p) => ({ where: `${CONFIG_FILE}:${p.line}:${p.column}`, message: p.message })) };
  return deps.templates.render("help", { ...view, ...rulesView, shortSha: pull.headSha.slice(0, 7) });
}
