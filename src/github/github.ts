/** The repository a job works on. */
export interface RepoRef {
  owner: string;
  name: string;
}

export const fullName = (repo: RepoRef) => `${repo.owner}/${repo.name}`;

/** The most files GitHub lists for a pull request: a longer list is cut, whatever is paged. */
export const GITHUB_PULL_FILES_LIMIT = 3000;

/** A PR's file list that GitHub cut at GITHUB_PULL_FILES_LIMIT: what it changes cannot be known from it. */
export class PullFilesCut extends Error {
  constructor(readonly limit = GITHUB_PULL_FILES_LIMIT) {
    super(`GitHub lists at most ${limit} files of a pull request`);
  }
}

export type CheckConclusion = "success" | "failure" | "neutral" | "cancelled" | "skipped" | "action_required";

export interface CheckOutput {
  title: string;
  summary: string;
  text?: string;
}

export interface CheckRunUpdate {
  status: "in_progress" | "completed";
  conclusion?: CheckConclusion;
  output?: CheckOutput;
  detailsUrl?: string;
}

/**
 * Everything plangate asks of GitHub for one installation: the port the
 * workers and handlers use, so tests swap only the HTTP edge behind it.
 */
/**
 * A PR's comments carrying one marker, as found: `sync` makes them read
 * exactly `bodies`; with `firstOnly`, only the first part is written (the
 * rest, and parts no longer needed, are left for a later sync).
 */
export interface MarkedComments {
  sync(bodies: string[], opts?: { firstOnly?: boolean }): Promise<void>;
}

export interface GitHub {
  /** The paths a PR changes (both names of a rename); throws PullFilesCut when GitHub's list is cut. */
  listPullFiles(repo: RepoRef, pullNumber: number): Promise<string[]>;
  createCheckRun(repo: RepoRef, name: string, headSha: string, update: CheckRunUpdate): Promise<number>;
  updateCheckRun(repo: RepoRef, checkRunId: number, update: CheckRunUpdate): Promise<void>;
  /** Makes the PR's comments carrying `marker` read exactly `bodies`: edits in place, adds, deletes surplus. */
  syncComments(repo: RepoRef, issueNumber: number, marker: string, bodies: string[]): Promise<void>;
  /** syncComments in two steps: the comments are found first (e.g. while the bodies are being rendered). */
  findComments(repo: RepoRef, issueNumber: number, marker: string): Promise<MarkedComments>;
  createComment(repo: RepoRef, issueNumber: number, body: string): Promise<void>;
  addReaction(repo: RepoRef, commentId: number, content: "eyes" | "+1" | "-1"): Promise<void>;
  /** The user's permission on the repository (collaborator permission API). */
  permissionOf(repo: RepoRef, user: string): Promise<Permission>;
  getPull(repo: RepoRef, pullNumber: number): Promise<PullRequestInfo>;
  /** The commit a branch points at now (git ref API). */
  branchSha(repo: RepoRef, branch: string): Promise<string>;
  listReviews(repo: RepoRef, pullNumber: number): Promise<Review[]>;
  /** The users GitHub maps the PR's commits' authors and committers to (GitHub lists at most 250 commits). */
  pullCommitUsers(repo: RepoRef, pullNumber: number): Promise<string[]>;
  /** Whether the user is an active member of the team (org/slug) of the repository's owner. */
  isTeamMember(org: string, teamSlug: string, user: string): Promise<boolean>;
  /** Puts `wanted` on the issue and takes the other `managed` labels off, in one write and only when that changes anything. */
  syncLabels(repo: RepoRef, issueNumber: number, wanted: string | undefined, managed: readonly string[]): Promise<void>;
  /** GitHub's id of the repository (a run token's repository_id): asked each time, as a repository made again under the same name has another. */
  repositoryId(repo: RepoRef): Promise<number>;
  /** The repository's default branch (drift is checked on it). */
  defaultBranch(repo: RepoRef): Promise<string>;
  /** Open issues carrying `label`, with their bodies. */
  openIssues(repo: RepoRef, label: string): Promise<{ number: number; body: string }[]>;
  /** Opens an issue with `labels` (GitHub creates a missing label); returns its number. */
  createIssue(repo: RepoRef, title: string, body: string, labels: string[]): Promise<number>;
  /** Rewrites an issue's body, or closes it. */
  updateIssue(repo: RepoRef, issueNumber: number, update: { body?: string; state?: "open" | "closed" }): Promise<void>;
  /** A short-lived installation token for git over HTTPS. */
  cloneToken(): Promise<string>;
  /** A file's text at a commit (contents API); undefined when the commit has no such file; throws FileTooLarge past GitHub's 1 MB. */
  fileAt(repo: RepoRef, sha: string, path: string): Promise<string | undefined>;
}

/** A file the contents API does not return whole (over 1 MB). */
export class FileTooLarge extends Error {
  constructor(readonly size: number) {
    super(`it is ${size} bytes, more than the 1 MB GitHub's contents API returns`);
  }
}

export interface PullRequestInfo {
  number: number;
  headSha: string;
  state: "open" | "closed";
  merged: boolean;
  author: string;
  headRepo: string | null;
  baseRepo: string;
  /** The PR's head branch (in headRepo). */
  headRef: string;
  /** The branch the PR merges into. */
  baseRef: string;
  /** The repository's default branch: its .plangate.yml decides the rules, whatever branch the PR targets. */
  defaultBranch: string;
  /** The PR's labels' names (policies read them as pull_request.labels). */
  labels: string[];
}

export interface Review {
  user: string;
  state: string;
  commitId: string;
  submittedAt: string;
}

export type Permission = "admin" | "maintain" | "write" | "triage" | "read" | "none";

/** One attempt in the App's webhook delivery log (GET /app/hook/deliveries). */
export interface HookDelivery {
  /** The attempt's id: what a redelivery is asked by. */
  id: number;
  /** X-GitHub-Delivery: every attempt of one delivery has the same. */
  guid: string;
  /** What the attempt got; not 2xx when it failed (0 when no answer came). */
  statusCode: number;
  /** When GitHub sent it (GitHub's clock). */
  deliveredAt: Date;
  /** Whether it was a redelivery of an earlier attempt. */
  redelivery: boolean;
  event: string;
  action: string | null;
}

/** What plangate asks of GitHub as the App itself (the App's JWT), not as one installation. */
export interface AppHookDeliveries {
  /** The attempts in the App's delivery log sent at or after `since`, newest first. */
  deliveriesSince(since: Date): Promise<HookDelivery[]>;
  /** Asks GitHub to send an attempt's delivery again: a new attempt, with the same guid. */
  redeliver(deliveryId: number): Promise<void>;
}

export interface GitHubFactory {
  forInstallation(installationId: number): Promise<GitHub>;
  /** The client of the installation that holds `repo` (e.g. PLANGATE_POLICY_REPO's owner's); undefined when the App is not installed there. */
  forRepository(repo: RepoRef): Promise<GitHub | undefined>;
  /** The App's own webhook delivery log. */
  hookDeliveries(): AppHookDeliveries;
}
