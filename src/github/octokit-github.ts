import { markerPart } from "./markers.js";
import { DroppedWrite } from "./write-order.js";
import type { Probot } from "probot";
import { escapeInvisible } from "../text/inert-text.js";
import { clipText } from "../text/clip-text.js";
import { GITHUB_CHECK_TEXT_LIMIT, GITHUB_COMMENT_LIMIT } from "./limits.js";
import type { CheckRunUpdate, GitHub, GitHubFactory, MarkedComments, Permission, PullRequestInfo, RepoRef, Review } from "./github.js";
import { FileTooLarge, GITHUB_PULL_FILES_LIMIT, PullFilesCut } from "./github.js";
import { octokitHookDeliveries } from "./octokit-hook-deliveries.js";

type Octokit = Awaited<ReturnType<Probot["auth"]>>;

/**
 * Who plangate is on GitHub: its App's id, and its bot user's login
 * (`<app-slug>[bot]`, asked of GitHub once, only when needed).
 */
interface AppIdentity {
  appId: number;
  botLogin(): Promise<string>;
}

/** What GitHub says of who wrote a comment or an issue. */
interface Authored {
  user?: { login: string; type?: string } | null;
  performed_via_github_app?: { id: number } | null;
}

/**
 * Whether plangate itself wrote it: its App's bot user, nobody else. A marker
 * in anyone else's comment means nothing (a read-only user can write one).
 * GitHub names the App that acted (performed_via_github_app) on what an
 * installation token wrote; where it does not, the bot's login decides.
 */
async function writtenByApp(item: Authored, self: AppIdentity): Promise<boolean> {
  if (item.user?.type !== "Bot") return false;
  if (item.performed_via_github_app?.id === self.appId) return true;
  return item.user.login === (await self.botLogin());
}


/**
 * Text as plangate posts it: bidirectional controls and invisible characters
 * shown escaped (`\u202e`), wherever they came from (a value, a name,
 * terraform's output), but for the zero-width spaces that keep mentions and
 * links from forming. An escape is longer than what it shows: text the
 * escapes take past GitHub's `limit` is cut as clipText cuts.
 */
function shown(text: string, limit = GITHUB_COMMENT_LIMIT): string {
  const visible = escapeInvisible(text, { keepAutolinkBreaks: true });
  return visible.length <= limit ? visible : clipText(visible, limit);
}

/** GitHub's limit on a check run's title. */
const CHECK_TITLE_LIMIT = 255;

function checkRunFields(update: CheckRunUpdate) {
  const text = update.output?.text;
  const output = update.output && {
    title: escapeInvisible(update.output.title, { keepAutolinkBreaks: true }).slice(0, CHECK_TITLE_LIMIT),
    summary: shown(update.output.summary, GITHUB_CHECK_TEXT_LIMIT),
    ...(text !== undefined ? { text: shown(text, GITHUB_CHECK_TEXT_LIMIT) } : {}),
  };
  return {
    status: update.status,
    conclusion: update.conclusion,
    output,
    details_url: update.detailsUrl,
    ...(update.status === "completed" ? { completed_at: new Date().toISOString() } : {}),
  };
}

/** An installation token for git, kept until ten minutes before it expires. */
interface CachedToken {
  token: string;
  expiresAt: number;
}

/** The committer GitHub names on commits its web UI makes. */
const WEB_FLOW = "web-flow";

const TOKEN_REUSE_MARGIN_MS = 10 * 60_000;

class OctokitGitHub implements GitHub {
  constructor(
    private readonly octokit: Octokit,
    private readonly appOctokit: () => Promise<Octokit>,
    private readonly installationId: number,
    private readonly cloneTokens: Map<number, CachedToken>,
    private readonly self: AppIdentity,
    /** Clone tokens being minted, by installation (shared like cloneTokens). */
    private readonly mintingTokens: Map<number, Promise<string>>,
  ) {}

  async listPullFiles(repo: RepoRef, pullNumber: number): Promise<string[]> {
    const files = await this.octokit.paginate(this.octokit.rest.pulls.listFiles, {
      owner: repo.owner,
      repo: repo.name,
      pull_number: pullNumber,
      per_page: 100,
    });
    // A list as long as GitHub's limit may be cut: a file past it could be a protected project's.
    if (files.length >= GITHUB_PULL_FILES_LIMIT) throw new PullFilesCut();
    return files.flatMap((f) => (f.previous_filename ? [f.filename, f.previous_filename] : [f.filename]));
  }

  async createCheckRun(repo: RepoRef, name: string, headSha: string, update: CheckRunUpdate): Promise<number> {
    const { data } = await this.octokit.rest.checks.create({
      owner: repo.owner,
      repo: repo.name,
      name,
      head_sha: headSha,
      ...checkRunFields(update),
    });
    return data.id;
  }

  async updateCheckRun(repo: RepoRef, checkRunId: number, update: CheckRunUpdate): Promise<void> {
    await this.octokit.rest.checks.update({ owner: repo.owner, repo: repo.name, check_run_id: checkRunId, ...checkRunFields(update) });
  }

  async syncComments(repo: RepoRef, issueNumber: number, marker: string, bodies: string[]): Promise<void> {
    await (await this.findComments(repo, issueNumber, marker)).sync(bodies);
  }

  async findComments(repo: RepoRef, issueNumber: number, marker: string): Promise<MarkedComments> {
    const existing = await this.octokit.paginate(this.octokit.rest.issues.listComments, {
      owner: repo.owner,
      repo: repo.name,
      issue_number: issueNumber,
      per_page: 100,
    });
    // Only plangate's own comments are its parts: it never edits or deletes anyone else's, whatever they hold.
    const byPart = new Map<number, { id: number; body: string }>();
    for (const comment of existing) {
      const part = markerPart(comment.body ?? "", marker);
      if (part !== undefined && !byPart.has(part) && (await writtenByApp(comment, this.self))) byPart.set(part, { id: comment.id, body: comment.body ?? "" });
    }
    return { sync: (bodies, opts) => this.writeParts(repo, issueNumber, byPart, opts?.firstOnly ? bodies.slice(0, 1) : bodies, !opts?.firstOnly) };
  }

  /**
   * Writes each part that differs from what the PR shows (a part left as it
   * was is not edited again; `byPart` follows what was written), then, when
   * `whole`, deletes parts no longer needed.
   */
  private async writeParts(repo: RepoRef, issueNumber: number, byPart: Map<number, { id: number; body: string }>, bodies: string[], whole: boolean): Promise<void> {
    for (const [index, body] of bodies.entries()) {
      const existing = byPart.get(index + 1);
      const text = shown(body);
      if (existing?.body === text) continue;
      if (existing) await this.octokit.rest.issues.updateComment({ owner: repo.owner, repo: repo.name, comment_id: existing.id, body: text });
      const id = existing?.id ?? (await this.octokit.rest.issues.createComment({ owner: repo.owner, repo: repo.name, issue_number: issueNumber, body: text })).data.id;
      byPart.set(index + 1, { id, body: text });
    }
    if (!whole) return;
    for (const [part, { id }] of byPart) {
      if (part > bodies.length) {
        await this.octokit.rest.issues.deleteComment({ owner: repo.owner, repo: repo.name, comment_id: id });
        byPart.delete(part);
      }
    }
  }

  async createComment(repo: RepoRef, issueNumber: number, body: string): Promise<void> {
    await this.octokit.rest.issues.createComment({ owner: repo.owner, repo: repo.name, issue_number: issueNumber, body: shown(body) });
  }

  async addReaction(repo: RepoRef, commentId: number, content: "eyes" | "+1" | "-1"): Promise<void> {
    await this.octokit.rest.reactions.createForIssueComment({ owner: repo.owner, repo: repo.name, comment_id: commentId, content });
  }

  async permissionOf(repo: RepoRef, user: string): Promise<Permission> {
    try {
      const { data } = await this.octokit.rest.repos.getCollaboratorPermissionLevel({ owner: repo.owner, repo: repo.name, username: user });
      const role = (data as { role_name?: string }).role_name;
      return (role === "maintain" || role === "triage" ? role : data.permission) as Permission;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return "none";
      throw error;
    }
  }

  async getPull(repo: RepoRef, pullNumber: number): Promise<PullRequestInfo> {
    const { data } = await this.octokit.rest.pulls.get({ owner: repo.owner, repo: repo.name, pull_number: pullNumber });
    return {
      number: data.number,
      headSha: data.head.sha,
      state: data.state as "open" | "closed",
      merged: data.merged,
      author: data.user?.login ?? "",
      headRepo: data.head.repo?.full_name ?? null,
      headRef: data.head.ref,
      baseRepo: data.base.repo.full_name,
      baseRef: data.base.ref,
      defaultBranch: data.base.repo.default_branch,
      labels: (data.labels ?? []).map((l) => l.name).filter((n): n is string => !!n),
    };
  }

  async pullCommitUsers(repo: RepoRef, pullNumber: number): Promise<string[]> {
    const commits = await this.octokit.paginate(this.octokit.rest.pulls.listCommits, { owner: repo.owner, repo: repo.name, pull_number: pullNumber, per_page: 100 });
    const users = new Set<string>();
    for (const c of commits) {
      if (c.author?.login) users.add(c.author.login);
      // GitHub itself commits what the web UI makes (merges, suggestions): its committer is nobody who could approve.
      if (c.committer?.login && c.committer.login !== WEB_FLOW) users.add(c.committer.login);
    }
    return [...users].sort();
  }

  async branchSha(repo: RepoRef, branch: string): Promise<string> {
    const { data } = await this.octokit.rest.git.getRef({ owner: repo.owner, repo: repo.name, ref: `heads/${branch}` });
    if (data.object.type !== "commit") throw new Error(`branch ${branch} of ${repo.owner}/${repo.name} does not point at a commit`);
    return data.object.sha;
  }

  async listReviews(repo: RepoRef, pullNumber: number): Promise<Review[]> {
    const reviews = await this.octokit.paginate(this.octokit.rest.pulls.listReviews, { owner: repo.owner, repo: repo.name, pull_number: pullNumber, per_page: 100 });
    return reviews.map((r) => ({ user: r.user?.login ?? "", state: r.state, commitId: r.commit_id ?? "", submittedAt: r.submitted_at ?? "" }));
  }

  async isTeamMember(org: string, teamSlug: string, user: string): Promise<boolean> {
    try {
      const { data } = await this.octokit.rest.teams.getMembershipForUserInOrg({ org, team_slug: teamSlug, username: user });
      return data.state === "active";
    } catch (error) {
      if ((error as { status?: number }).status === 404) return false;
      throw error;
    }
  }

  async syncLabels(repo: RepoRef, issueNumber: number, wanted: string | undefined, managed: readonly string[]): Promise<void> {
    const base = { owner: repo.owner, repo: repo.name };
    const current = (await this.octokit.paginate(this.octokit.rest.issues.listLabelsOnIssue, { ...base, issue_number: issueNumber, per_page: 100 })).map((l) => l.name);
    const next = current.filter((name) => name === wanted || !managed.includes(name));
    if (wanted && !next.includes(wanted)) next.push(wanted);
    if (next.length === current.length && next.every((name) => current.includes(name))) return;
    // One write whatever changes; GitHub creates a label the repository does not have yet.
    await this.octokit.rest.issues.setLabels({ ...base, issue_number: issueNumber, labels: next });
  }

  async repositoryId(repo: RepoRef): Promise<number> {
    const { data } = await this.octokit.rest.repos.get({ owner: repo.owner, repo: repo.name });
    return data.id;
  }

  async defaultBranch(repo: RepoRef): Promise<string> {
    const { data } = await this.octokit.rest.repos.get({ owner: repo.owner, repo: repo.name });
    return data.default_branch;
  }

  async openIssues(repo: RepoRef, label: string): Promise<{ number: number; body: string }[]> {
    const issues = await this.octokit.paginate(this.octokit.rest.issues.listForRepo, { owner: repo.owner, repo: repo.name, labels: label, state: "open", per_page: 100 });
    // Anyone an issue template labels for, or a triager, can open an issue with the label: only plangate's own are its.
    const own = [];
    for (const i of issues) if (!i.pull_request && (await writtenByApp(i, this.self))) own.push({ number: i.number, body: i.body ?? "" });
    return own;
  }

  async createIssue(repo: RepoRef, title: string, body: string, labels: string[]): Promise<number> {
    const { data } = await this.octokit.rest.issues.create({ owner: repo.owner, repo: repo.name, title: shown(title), body: shown(body), labels });
    return data.number;
  }

  async updateIssue(repo: RepoRef, issueNumber: number, update: { body?: string; state?: "open" | "closed" }): Promise<void> {
    await this.octokit.rest.issues.update({ owner: repo.owner, repo: repo.name, issue_number: issueNumber, ...update, ...(update.body !== undefined ? { body: shown(update.body) } : {}) });
  }

  async cloneToken(): Promise<string> {
    // One token per installation while it is fresh: a plan's fetches and checkouts would otherwise each ask GitHub for one.
    const cached = this.cloneTokens.get(this.installationId);
    if (cached && cached.expiresAt - Date.now() > TOKEN_REUSE_MARGIN_MS) return cached.token;
    // Callers at once (a first plan's head and base fetches) share one mint: one JWT signed, one request.
    let minting = this.mintingTokens.get(this.installationId);
    if (!minting) {
      minting = this.mintCloneToken().finally(() => this.mintingTokens.delete(this.installationId));
      this.mintingTokens.set(this.installationId, minting);
    }
    return minting;
  }

  private async mintCloneToken(): Promise<string> {
    // Through the app client, not octokit.auth(): the latter asks the public host even under GHE_HOST (FIELD-NOTES).
    const app = await this.appOctokit();
    const { data } = await app.rest.apps.createInstallationAccessToken({ installation_id: this.installationId });
    this.cloneTokens.set(this.installationId, { token: data.token, expiresAt: Date.parse(data.expires_at) });
    return data.token;
  }

  async fileAt(repo: RepoRef, sha: string, path: string): Promise<string | undefined> {
    try {
      const { data } = await this.octokit.rest.repos.getContent({ owner: repo.owner, repo: repo.name, path, ref: sha });
      if (Array.isArray(data) || data.type !== "file") return undefined;
      // Over 1 MB GitHub leaves the content out (encoding "none").
      if (data.encoding !== "base64") throw new FileTooLarge(data.size);
      return Buffer.from(data.content, "base64").toString("utf8");
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  }
}

/** Told of every GitHub API response (or error) this process gets: for metrics. */
export interface GitHubObserver {
  response(method: string, status: number, rateLimitRemaining: number | undefined): void;
}

function observe(octokit: Octokit, observer?: GitHubObserver): Octokit {
  if (!observer) return octokit;
  const remaining = (headers: Record<string, unknown> | undefined) => {
    const value = Number(headers?.["x-ratelimit-remaining"]);
    return Number.isFinite(value) && headers?.["x-ratelimit-remaining"] !== undefined ? value : undefined;
  };
  octokit.hook.after("request", (response, options) => observer.response(options.method, response.status, remaining(response.headers)));
  octokit.hook.error("request", (error, options) => {
    if (error instanceof DroppedWrite) throw error; // never sent: not a response
    const failed = error as { status?: number; response?: { headers?: Record<string, unknown> } };
    observer.response(options.method, failed.status ?? 0, remaining(failed.response?.headers));
    throw error;
  });
  return octokit;
}

/**
 * GitHub access through Probot's authenticated Octokit (honours GHE_HOST/GHE_PROTOCOL),
 * as the App `appId` (APP_ID): the comments and issues it reads as its own are its bot's.
 */
export function octokitGitHubFactory(probot: Probot, appId: number, observer?: GitHubObserver): GitHubFactory {
  const cloneTokens = new Map<number, CachedToken>();
  const mintingTokens = new Map<number, Promise<string>>();
  const appOctokit = async () => observe(await probot.auth(), observer);
  let botLogin: Promise<string> | undefined;
  const self: AppIdentity = {
    appId,
    botLogin() {
      botLogin ??= appOctokit()
        .then((app) => app.rest.apps.getAuthenticated())
        .then(({ data }) => {
          if (!data?.slug) throw new Error("GET /app did not name the App's slug");
          return `${data.slug}[bot]`;
        });
      // A failed ask is asked again next time; until then nothing is taken as plangate's.
      return botLogin.catch((error: unknown) => {
        botLogin = undefined;
        throw error;
      });
    },
  };
  return {
    async forInstallation(installationId: number) {
      return new OctokitGitHub(observe(await probot.auth(installationId), observer), appOctokit, installationId, cloneTokens, self, mintingTokens);
    },
    async forRepository(repo: RepoRef) {
      // Asked each time (one request as the App): an installation removed and made again has another id.
      const app = await appOctokit();
      try {
        const { data } = await app.rest.apps.getRepoInstallation({ owner: repo.owner, repo: repo.name });
        return this.forInstallation(data.id);
      } catch (error) {
        if ((error as { status?: number }).status === 404) return undefined;
        throw error;
      }
    },
    hookDeliveries: () => octokitHookDeliveries(appOctokit),
  };
}

/**
 * Signs one App JWT (locally: nothing is sent to GitHub), so that the first
 * installation tokens a fresh worker mints do not pay reading the App's key
 * and the signing code's first run (~15 ms each, twice in a first plan).
 */
export async function warmAppAuth(probot: Probot): Promise<void> {
  const app = await probot.auth();
  await app.auth({ type: "app" });
}
