import { queueGroupAt, type Refusal, type RunGroup } from "../../db/run-groups.js";
import type { GitHub, RepoRef } from "../../github/github.js";
import { isTouched } from "../../projects/affected.js";
import type { WorkerDeps } from "../deps.js";
import { loadProjects } from "../plan/load-projects.js";

/** A queue verification of a commit ahead that began but is not finished: the job is retried until it is. */
export class AheadNotVerifiedYet extends Error {}

/** Outcomes of an ahead PR's verification that account for its change: verified, or nothing to apply. */
const ACCOUNTED = new Set(["no-changes", "already-applied"]);

const accounts = (group: RunGroup | undefined) =>
  !!group?.outcome && (group.outcome.result === "verified" || (group.outcome.result === "refused" && ACCOUNTED.has(group.outcome.code)));

/**
 * A merge queue commit carries the changes of every pull request ahead of it
 * in the queue (its first-parent line back to the base branch's head). Each
 * project one of those commits changes must be accounted for by that
 * commit's own verification (DESIGN.md section 3, "Merge queues"): a change
 * no verified, approved plan accounts for is refused, naming project and PR.
 * Projects are those the queue commit's config knows and those the base
 * branch's head knows: a PR ahead cannot drop its project from the config to
 * hide its change. `unplannedPull`: the queued PR has no plan, so the queue
 * commit's own change is unaccounted for too.
 * Returns undefined when everything is accounted for.
 */
export async function unaccountedAhead(deps: WorkerDeps, gh: GitHub, repo: RepoRef, queueSha: string, baseRef: string, unplannedPull?: number): Promise<Refusal | undefined> {
  const token = () => gh.cloneToken();
  const branch = baseRef.replace(/^refs\/heads\//, "");
  const baseHead = await gh.branchSha(repo, branch);
  const stacked = await deps.mirrors.stackedCommits(repo, baseHead, queueSha, token);
  const checked = stacked.filter((c) => c.sha !== queueSha || unplannedPull !== undefined);
  if (!checked.length) return undefined;
  const loaded = await loadProjects(deps.mirrors, repo, queueSha, token);
  if (!loaded.ok) return { code: "queue-unaccounted", unaccounted: [{ project: ".plangate.yml", commit: queueSha.slice(0, 7) }] };
  const known = await loadProjects(deps.mirrors, repo, baseHead, token);
  const sets = [loaded, ...(known.ok ? [known] : [])].map((l) => ({ projects: l.config.projects, moduleCalls: l.moduleCalls }));
  const unaccounted: NonNullable<Refusal["unaccounted"]> = [];
  for (const commit of checked) {
    const touched = new Set(sets.flatMap((s) => s.projects.filter((p) => isTouched(p, commit.files, s.moduleCalls, s.projects)).map((p) => p.name)));
    if (!touched.size) continue;
    if (commit.sha === queueSha) {
      for (const project of touched) unaccounted.push({ project, commit: commit.sha.slice(0, 7), pull: unplannedPull! });
      continue;
    }
    const group = await queueGroupAt(deps.pool, `${repo.owner}/${repo.name}`, commit.sha);
    if (group && !group.outcome) throw new AheadNotVerifiedYet(`the merge queue commit ${commit.sha.slice(0, 7)} ahead of this one is still being verified`);
    if (accounts(group)) continue;
    for (const project of touched) unaccounted.push({ project, commit: commit.sha.slice(0, 7), ...(group?.pull_number ? { pull: group.pull_number } : {}) });
  }
  return unaccounted.length ? { code: "queue-unaccounted", unaccounted } : undefined;
}
