/** What a number on a page refers to on GitHub: a pull request or an issue (GitHub's own path segments). */
export type GitHubNumberKind = "pull" | "issues";

/** GitHub's rules for names: an owner is letters, digits and hyphens; a repository adds `.` and `_`. */
const OWNER = /^[A-Za-z0-9-]+$/;
const REPOSITORY = /^[A-Za-z0-9._-]+$/;

/**
 * The address of pull request or issue `number` of `repo` ("owner/name") on
 * GitHub's web at `webBase` (settings' githubWebUrl). Undefined when the name
 * is not one GitHub could have given (the page shows the number unlinked): a
 * hostile name can never steer the link off `webBase`, and each part is
 * percent-encoded as well, so the link holds no markup either.
 */
export function githubNumberUrl(webBase: string, repo: string, kind: GitHubNumberKind, number: number | null | undefined): string | undefined {
  if (!Number.isSafeInteger(number) || number! <= 0) return undefined;
  const parts = repo.split("/");
  if (parts.length !== 2) return undefined;
  const [owner, name] = parts as [string, string];
  if (!OWNER.test(owner) || !REPOSITORY.test(name) || name === "." || name === "..") return undefined;
  return `${webBase}/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/${kind}/${number}`;
}
