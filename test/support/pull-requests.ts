import { closePullRequest, queueDrained, waitFor, WEBHOOK_SECRET, type Harness } from "./app-harness.js";
import type { GitRepo } from "./git-repo.js";
import { asShown } from "./markdown.js";
import { deliver, examplePayload } from "./webhooks.js";

export interface Pr {
  number: number;
  branch: string;
  sha: string;
  /** The branch it merges into (main). */
  base?: string;
  /** The base's head when it opened: GitHub lists the commits after it as the PR's. */
  baseSha?: string;
}

/**
 * Drives pull requests against the fake GitHub the way GitHub would: real
 * commits on a real repository, real example payloads, signed deliveries.
 */
export class PullRequests {
  private next: number;
  constructor(
    private readonly h: Harness,
    private readonly repo: GitRepo,
    readonly author = "Codertocat", // the example payloads' PR author
    firstNumber = 500,
  ) {
    this.next = firstNumber;
  }

  get full(): string {
    return `${this.repo.owner}/${this.repo.name}`;
  }

  /**
   * Opens a PR whose branch is `files` over `base` (main), and waits for its plan to complete.
   * `as`: who authors the commit (GitHub maps it to them), else nobody GitHub knows.
   */
  async open(files: Record<string, string | null>, changed: string[], opts: { base?: string; as?: string } = {}): Promise<Pr> {
    return this.planned(this.branch(files, opts), "opened", changed);
  }

  /** Opens a PR as open() does, without waiting for its plan: returns once plangate accepted the webhook. */
  /** `delivering`: told right before the webhook is sent (after the commit is made and pushed), as a bench's clock. */
  async openNoWait(files: Record<string, string | null>, changed: string[], delivering?: () => void): Promise<Pr> {
    const p = this.branch(files, {});
    await this.delivered(p, "opened", changed, undefined, delivering);
    return p;
  }

  private branch(files: Record<string, string | null>, opts: { base?: string; as?: string }): Pr {
    const number = ++this.next;
    const branch = `pr-${number}`;
    const base = opts.base ?? "main";
    const baseSha = this.repo.sha(base);
    return { number, branch, base, baseSha, sha: this.repo.commit(files, branch, "change", undefined, { from: base, as: opts.as }) };
  }

  /** Opens a PR whose head `sha` on `branch` was made otherwise (git plumbing), and waits for its plan to complete. */
  async openAt(branch: string, sha: string, changed: string[]): Promise<Pr> {
    return this.planned({ number: ++this.next, branch, sha, base: "main", baseSha: this.repo.sha("main") }, "opened", changed);
  }

  /** Pushes `files` to the PR's branch; `as`: the user who pushes (the synchronize's sender) and authors the commit. */
  async push(p: Pr, files: Record<string, string | null>, changed: string[], opts: { as?: string; authoredAs?: string } = {}): Promise<Pr> {
    return this.planned({ ...p, sha: this.repo.commit(files, p.branch, "change", undefined, { as: opts.authoredAs ?? opts.as }) }, "synchronize", changed, opts.as);
  }

  /** Pushes as push() does, without waiting for its plan: returns once plangate accepted the webhook. */
  async pushNoWait(p: Pr, files: Record<string, string | null>, changed: string[], delivering?: () => void): Promise<Pr> {
    const pushed = { ...p, sha: this.repo.commit(files, p.branch, "change") };
    await this.delivered(pushed, "synchronize", changed, undefined, delivering);
    return pushed;
  }

  private async planned(p: Pr, action: string, changed: string[], sender = this.author): Promise<Pr> {
    await this.delivered(p, action, changed, sender);
    await waitFor("plangate/plan", () => this.check("plangate/plan", p.sha)?.status === "completed");
    await queueDrained(this.h.db);
    return p;
  }

  private async delivered(p: Pr, action: string, changed: string[], sender = this.author, delivering?: () => void): Promise<void> {
    this.h.fake.pullFiles.set(`${this.full}#${p.number}`, changed);
    this.h.fake.pulls.set(`${this.full}#${p.number}`, { headSha: p.sha, author: this.author, headRef: p.branch, base: p.base, baseSha: p.baseSha });
    const payload = examplePayload("pull_request", action);
    Object.assign(payload.pull_request, { number: p.number, draft: false });
    payload.pull_request.head.sha = p.sha;
    payload.pull_request.base.ref = p.base ?? "main";
    payload.sender = { ...payload.sender, login: sender };
    delivering?.();
    const res = await deliver(this.h.url, "pull_request", payload, WEBHOOK_SECRET);
    if (res.status !== 200) throw new Error(`pull_request.${action} answered ${res.status}`);
  }

  check(name: string, sha: string) {
    return this.h.fake.checkRuns.filter((c) => c.name === name && c.head_sha === sha).at(-1);
  }

  async review(p: Pr, user: string, state = "APPROVED"): Promise<void> {
    const key = `${this.full}#${p.number}`;
    this.h.fake.reviews.set(key, [...(this.h.fake.reviews.get(key) ?? []), { user, state, commit_id: p.sha }]);
    const payload = examplePayload("pull_request_review", "submitted");
    payload.pull_request = { ...payload.pull_request, number: p.number, head: { ...payload.pull_request.head, sha: p.sha } };
    payload.review = { ...payload.review, state: state.toLowerCase(), commit_id: p.sha, user: { ...payload.review.user, login: user } };
    const res = await deliver(this.h.url, "pull_request_review", payload, WEBHOOK_SECRET);
    if (res.status !== 200) throw new Error(`review answered ${res.status}`);
    await queueDrained(this.h.db);
  }

  async comment(p: Pr, body: string, user: string): Promise<void> {
    const payload = examplePayload("issue_comment", "created");
    payload.issue = { ...payload.issue, number: p.number, pull_request: { url: "x" } };
    payload.comment = { ...payload.comment, id: Math.floor(Math.random() * 1e9), body, user: { ...payload.comment.user, login: user, type: "User" } };
    payload.sender = { ...payload.sender, login: user, type: "User" };
    const res = await deliver(this.h.url, "issue_comment", payload, WEBHOOK_SECRET);
    if (res.status !== 200) throw new Error(`comment answered ${res.status}`);
    await queueDrained(this.h.db);
  }

  /**
   * Puts the PR in the merge queue: GitHub's queue commit (`on` main, or the queue commit of the PR ahead) and its
   * merge_group.checks_requested, then waits for plangate's verdict on it; returns the queue commit.
   */
  async queue(p: Pr, on?: string): Promise<string> {
    const [sha, ref] = this.repo.queueCommit(p.branch, p.number, p.sha, on);
    const payload = examplePayload("merge_group", "checks_requested");
    payload.repository = { ...payload.repository, name: this.repo.name, full_name: this.full, owner: { ...payload.repository.owner, login: this.repo.owner } };
    payload.merge_group = { ...payload.merge_group, head_sha: sha, head_ref: ref, base_ref: "refs/heads/main" };
    const res = await deliver(this.h.url, "merge_group", payload, WEBHOOK_SECRET);
    if (res.status !== 200) throw new Error(`merge_group answered ${res.status}`);
    await waitFor("the queue checks", () => this.check("plangate/approval", sha)?.status === "completed", 120_000);
    await queueDrained(this.h.db);
    return sha;
  }

  /** Merges with a real merge commit and delivers pull_request.closed (merged). */
  async merge(p: Pr, by = "alice"): Promise<string> {
    const mergeSha = this.repo.merge(p.branch, p.base);
    await closePullRequest(this.h, p.number, p.sha, { mergeSha, mergedBy: by, base: p.base });
    return mergeSha;
  }

  close(p: Pr): Promise<void> {
    return closePullRequest(this.h, p.number, p.sha);
  }

  /** The PR's comments as GitHub shows them. */
  comments(p: Pr): string[] {
    return this.h.fake.commentsOn(this.full, p.number).map((c) => asShown(c.body));
  }

  async audit(p: Pr): Promise<{ action: string; actor: string; sha: string; details: Record<string, any> }[]> {
    return (await this.h.db.pool.query("select action, actor, sha, details from audit_events where pull_number = $1 order by id", [p.number])).rows;
  }
}
