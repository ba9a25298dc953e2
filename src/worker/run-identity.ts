import type { RunIdentity } from "../credentials/run-tokens.js";
import type { GitHub, RepoRef } from "../github/github.js";

/** What a job knows of a run's identity itself; the repository's id is asked of GitHub. */
export type IdentityParts = Omit<RunIdentity, "repositoryId">;

/**
 * Identities for the runs of one job, made only when a project with
 * `credentials` mints a token: GitHub is asked for the repository's id then,
 * once per job (never cached longer: a repository deleted and made again
 * under its name has another id, which is what a relying party pins).
 */
export function identitiesFor(gh: GitHub, repo: RepoRef): (parts: () => IdentityParts | Promise<IdentityParts>) => () => Promise<RunIdentity> {
  let id: Promise<number> | undefined;
  return (parts) => async () => ({ ...(await parts()), repositoryId: await (id ??= gh.repositoryId(repo)) });
}
