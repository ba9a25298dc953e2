import { FileTooLarge, fullName, type GitHub, type GitHubFactory, type RepoRef } from "../github/github.js";
import type { ConfigProblem } from "../settings/load-repo-config.js";
import { loadOrgPolicyFile, ORG_POLICY_FILE } from "../settings/org-policy-file.js";
import type { PolicyConfig } from "../settings/repo-config.js";

/**
 * The organisation's policies (DESIGN.md section 2): PLANGATE_POLICY_REPO's
 * default branch's `.plangate-policies.yml`, read with the installation of
 * that repository's owner, whichever repository is being planned.
 */

/** Why the organisation's policies cannot be had; worded by templates/org-policies-unavailable.hbs. */
export type OrgPolicyProblem =
  | { kind: "not-installed" }
  | { kind: "no-file" }
  | { kind: "too-large"; size: number }
  | { kind: "invalid"; problems: ConfigProblem[] }
  | { kind: "github"; status?: number; message: string };

export type OrgPolicies =
  | { ok: true; repo: string; sha: string; policies: PolicyConfig[] }
  | { ok: false; repo: string; sha?: string; problem: OrgPolicyProblem };

/** What one commit's file gave: read once per commit. */
type CommitRead = { ok: true; policies: PolicyConfig[] } | { ok: false; problem: OrgPolicyProblem };

/** Commits whose reading is kept: the head moves rarely; a few older ones cover plans that began before it moved. */
const KEPT_COMMITS = 8;

/**
 * Reads the organisation's policies for each plan: where the default branch
 * points is asked each time (so a merged policy holds from the next plan on),
 * the file only once per commit (plans of every repository share it; reads of
 * the same commit at once share one request). One per process, built by the
 * composition root.
 */
export class OrgPolicySource {
  private readonly byCommit = new Map<string, Promise<CommitRead>>();

  constructor(
    private readonly github: GitHubFactory,
    readonly repo: RepoRef,
  ) {}

  /** The policies at the default branch's head now, or why they cannot be had. Never throws. */
  async current(): Promise<OrgPolicies> {
    const repo = fullName(this.repo);
    let sha: string | undefined;
    try {
      const gh = await this.github.forRepository(this.repo);
      if (!gh) return { ok: false, repo, problem: { kind: "not-installed" } };
      sha = await gh.branchSha(this.repo, await gh.defaultBranch(this.repo));
      const read = await this.readAt(gh, sha);
      return read.ok ? { ok: true, repo, sha, policies: read.policies } : { ok: false, repo, sha, problem: read.problem };
    } catch (error) {
      const failed = error as { status?: number; message?: string };
      return { ok: false, repo, ...(sha ? { sha } : {}), problem: { kind: "github", ...(failed.status ? { status: failed.status } : {}), message: String(failed.message ?? error) } };
    }
  }

  private readAt(gh: GitHub, sha: string): Promise<CommitRead> {
    const kept = this.byCommit.get(sha);
    if (kept) return kept;
    const read = gh.fileAt(this.repo, sha, ORG_POLICY_FILE).then(
      (text): CommitRead => (text === undefined ? { ok: false, problem: { kind: "no-file" } } : parsed(text)),
      (error: unknown): CommitRead => {
        if (error instanceof FileTooLarge) return { ok: false, problem: { kind: "too-large", size: error.size } };
        throw error;
      },
    );
    this.byCommit.set(sha, read);
    // GitHub failing is not the commit's fault: the next plan asks again.
    read.catch(() => this.byCommit.delete(sha));
    if (this.byCommit.size > KEPT_COMMITS) this.byCommit.delete(this.byCommit.keys().next().value!);
    return read;
  }
}

function parsed(text: string): CommitRead {
  const loaded = loadOrgPolicyFile(text);
  return loaded.ok ? loaded : { ok: false, problem: { kind: "invalid", problems: loaded.problems } };
}
