import { execFileSync, spawn } from "node:child_process";
import { createPublicKey, verify as verifySignature } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { FakeHook } from "./fake-hook.js";

export interface Comment {
  id: number;
  issue: number;
  repo: string;
  body: string;
  user: { login: string; type: string };
  /** The App whose installation token wrote it, as GitHub says (null for a person's comment). */
  performed_via_github_app?: { id: number; slug: string } | null;
}

export interface CheckRun {
  id: number;
  repo: string;
  name: string;
  head_sha: string;
  status: string;
  conclusion?: string;
  output?: { title?: string; summary?: string; text?: string };
  details_url?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  at: number;
}

type FaultHeaders = Record<string, string> | (() => Record<string, string>);

type Route = (req: http.IncomingMessage, params: string[], body: unknown, url: URL) => Promise<[number, unknown]> | [number, unknown];

const API = "/api/v3";

/** A page of a list answer; `next`: the path and query of the page after it. */
class Paged<T> {
  constructor(readonly items: T[], readonly next?: string) {}
}
/** The most files GitHub lists for a pull request ("Responses include a maximum of 3000 files"). */
const PULL_FILES_LISTED = 3000;

/**
 * GitHub Enterprise Server, faked at the HTTP level for the app's real Octokit
 * and real git: it serves exactly the endpoints plangate uses, checks the app's
 * JWT and installation tokens, and records every request it did not expect.
 */
export class FakeGitHub {
  readonly gitRoot = mkdtempSync(path.join(os.tmpdir(), "plangate-fake-git-"));
  readonly comments: Comment[] = [];
  readonly checkRuns: CheckRun[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly unexpected: string[] = [];
  readonly pullFiles = new Map<string, string[]>();
  readonly issuedTokens: string[] = [];
  /** The installation each issued token belongs to. */
  private readonly tokenInstallations = new Map<string, number>();
  /**
   * The App's installation per account (GET /repos/:owner/:repo/installation); an account listed here is
   * only read with its own installation's tokens. Accounts not listed: no installation is found (404).
   */
  readonly installations = new Map<string, number>();
  readonly reactions: { commentId: number; content: string }[] = [];
  /** Collaborator permission per "owner/repo:user"; unknown users are not collaborators (404). */
  readonly permissions = new Map<string, string>();
  /** Pull requests as GET /pulls/:n returns them, per "owner/repo#n". */
  /** Reviews per "owner/repo#n", in submission order. */
  readonly reviews = new Map<string, { user: string; state: string; commit_id: string }[]>();
  /** Active team members per "org/team-slug". */
  readonly teams = new Map<string, string[]>();
  /** The repository's labels (name -> colour) and each issue's labels. */
  readonly labels = new Map<string, string>();
  readonly issueLabels = new Map<string, string[]>();
  readonly pulls = new Map<string, { headSha: string; state?: string; merged?: boolean; author?: string; headRepo?: string; headRef?: string; base?: string; baseSha?: string }>();
  /** GitHub's id of a repository ("owner/repo"); 4242 when not set. */
  readonly repositoryIds = new Map<string, number>();
  /** Every repository's default branch (GitHub's `default_branch`). */
  defaultBranch = "main";
  /** GitHub's bad days: the next `times` requests matching method and path answer `status` (see fail). */
  private readonly faults: { method: string; path: RegExp; status: number; times: number; headers?: FaultHeaders; message?: string }[] = [];
  /** A slow GitHub: the next request matching method and path waits for release() before it is served (see hold). */
  private readonly holds: { method: string; path: RegExp; reached: () => void; released: Promise<void> }[] = [];
  /** Issues (not pull requests) per "owner/repo", as plangate's drift checks open and close them. */
  readonly issues: { repo: string; number: number; title: string; body: string; labels: string[]; state: "open" | "closed"; user: { login: string; type: string }; performed_via_github_app: { id: number; slug: string } | null }[] = [];
  /** The App's webhook: deliveries sent through it are logged for GET /app/hook/deliveries, and can be redelivered. */
  readonly hook = new FakeHook();
  /** The App plangate runs as (its APP_ID): what it writes is its bot's, `<slug>[bot]`. */
  readonly app = { id: 4242, slug: "plangate" };
  /** When false, listed comments and issues leave out performed_via_github_app (as some GitHub answers do): only the bot's login names the author. */
  performedViaApp = true;
  private nextId = 1000;
  /** x-ratelimit-remaining of the next API response: one less per request, as GitHub counts. */
  rateLimitRemaining = 5000;
  /** The App's OAuth client; the token exchange refuses any other. */
  oauthApp?: { clientId: string; clientSecret: string };
  /** Who "logs in" when a browser reaches /login/oauth/authorize (GitHub would ask them). */
  oauthUser?: string;
  /** The installation repositories each user can see (GET /user/installations/:id/repositories), with their permissions. */
  readonly userRepos = new Map<string, { full_name: string; permissions: { admin: boolean; push: boolean; pull: boolean } }[]>();
  /** OAuth codes handed out and user tokens issued, each to a login. */
  private readonly oauthCodes = new Map<string, string>();
  readonly userTokens = new Map<string, string>();
  private webRoutes: [string, RegExp, (req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: Buffer) => void][] = [];
  private server = http.createServer((req, res) => void this.handle(req, res));
  private routes: [string, RegExp, Route][] = [];

  constructor(private readonly appPublicKeyPem: string, readonly botLogin = "plangate[bot]") {
    this.route("GET", /^\/app$/, (req) => {
      this.requireAppJwt(req);
      return [200, { id: this.app.id, slug: this.app.slug, name: this.app.slug, owner: { login: "Codertocat" } }];
    });
    // The App's delivery log, newest first, paged by cursor (the Link header names the next page).
    this.route("GET", /^\/app\/hook\/deliveries$/, (req, _p, _b, url) => {
      this.requireAppJwt(req);
      if (url.searchParams.has("page")) throw new Unexpected("GET /app/hook/deliveries pages by cursor, not page");
      const { items, cursor } = this.hook.list(url);
      const next = new URLSearchParams(url.searchParams);
      if (cursor) next.set("cursor", cursor);
      return [200, new Paged(items, cursor ? `${url.pathname}?${next}` : undefined)];
    });
    this.route("POST", /^\/app\/hook\/deliveries\/(\d+)\/attempts$/, (req, [id]) => {
      this.requireAppJwt(req);
      if (!this.hook.redeliver(Number(id))) throw new Unexpected(`redelivery asked for delivery ${id}, which the App's log does not hold`);
      return [202, {}];
    });
    this.route("POST", /^\/app\/installations\/(\d+)\/access_tokens$/, (req, [id]) => {
      this.requireAppJwt(req);
      const token = `ghs_fake${this.nextId++}`;
      this.issuedTokens.push(token);
      this.tokenInstallations.set(token, Number(id));
      return [201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {} }];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/files$/, (req, [o, r, n], _b, url) => {
      this.requireInstallationToken(req);
      const files = this.pullFiles.get(`${o}/${r}#${n}`);
      if (!files) throw new Unexpected(`no files configured for ${o}/${r}#${n}`);
      // GitHub lists at most 3000 files of a pull request, whatever the pages asked for.
      return [200, this.linkedPage(files.slice(0, PULL_FILES_LISTED).map((filename) => ({ filename, status: "modified" })), url)];
    });
    this.route("POST", /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)\/reactions$/, (req, [, , id], body) => {
      this.requireInstallationToken(req);
      const content = (body as { content: string }).content;
      this.reactions.push({ commentId: Number(id), content });
      return [201, { id: this.nextId++, content }];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/, (req, [o, r, user]) => {
      this.requireInstallationToken(req);
      const permission = this.permissions.get(`${o}/${r}:${user}`);
      if (!permission) return [404, { message: "Not Found" }];
      return [200, { permission: permission === "maintain" ? "write" : permission, role_name: permission, user: { login: user } }];
    });
    // A branch's head, read from the real repository the fake serves over git (its ref files: as quick as GitHub's answer, no spawn).
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/git\/ref\/(.+)$/, async (req, [o, r, ref]) => {
      this.requireInstallationToken(req, o);
      const name = decodeURIComponent(ref!);
      if (!/^heads\/[A-Za-z0-9._/-]+$/.test(name) || name.includes("..")) throw new Unexpected(`unexpected ref ${name}`);
      const sha = await refSha(path.join(this.gitRoot, o!, `${r}.git`), `refs/${name}`);
      if (!sha) return [404, { message: "Not Found" }];
      return [200, { ref: `refs/${name}`, object: { sha, type: "commit", url: "" } }];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/, (req, [o, r, n]) => {
      this.requireInstallationToken(req);
      const pull = this.pulls.get(`${o}/${r}#${n}`);
      if (!pull) throw new Unexpected(`no pull request configured for ${o}/${r}#${n}`);
      const base = { repo: { full_name: `${o}/${r}`, default_branch: this.defaultBranch }, ref: pull.base ?? "main" };
      return [200, {
        number: Number(n), state: pull.state ?? "open", merged: pull.merged ?? false, user: { login: pull.author ?? "octocat" },
        head: { sha: pull.headSha, ref: pull.headRef ?? "feature", repo: { full_name: pull.headRepo ?? `${o}/${r}` } }, base,
        labels: (this.issueLabels.get(`${o}/${r}#${n}`) ?? []).map((name) => ({ name })),
      }];
    });
    // The PR's commits as GitHub lists them (head not in base as it was when the PR opened, at most 250), read from the real repository: an author or
    // committer e-mail <login>@users.noreply.github.com maps to that user, as GitHub maps a verified e-mail; others to none.
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/commits$/, (req, [o, r, n], _b, url) => {
      this.requireInstallationToken(req);
      const pull = this.pulls.get(`${o}/${r}#${n}`);
      if (!pull) throw new Unexpected(`no pull request configured for ${o}/${r}#${n}`);
      const gitDir = path.join(this.gitRoot, o!, `${r}.git`);
      const log = execFileSync("git", ["--git-dir", gitDir, "log", "--reverse", "--max-count=250", "--format=%H%x00%ae%x00%ce", pull.headSha, "--not", pull.baseSha ?? `refs/heads/${pull.base ?? "main"}`], { encoding: "utf8" });
      const user = (email: string) => {
        const login = /^(?:\d+\+)?([^@]+)@users\.noreply\.github\.com$/.exec(email)?.[1];
        return login ? { login, type: "User" } : null;
      };
      const commits = log.split("\n").filter(Boolean).map((line) => {
        const [sha, author, committer] = line.split("\0") as [string, string, string];
        return { sha, commit: { author: { email: author }, committer: { email: committer } }, author: user(author), committer: user(committer) };
      });
      return [200, this.page(commits, url)];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/reviews$/, (req, [o, r, n], _b, url) => {
      this.requireInstallationToken(req);
      const reviews = (this.reviews.get(`${o}/${r}#${n}`) ?? []).map((rv, i) => ({
        id: i + 1, user: { login: rv.user }, state: rv.state, commit_id: rv.commit_id, submitted_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      }));
      return [200, this.page(reviews, url)];
    });
    this.route("GET", /^\/orgs\/([^/]+)\/teams\/([^/]+)\/memberships\/([^/]+)$/, (req, [org, team, user]) => {
      this.requireInstallationToken(req);
      const members = this.teams.get(`${org}/${team}`);
      if (!members?.includes(user!)) return [404, { message: "Not Found" }];
      return [200, { state: "active", role: "member" }];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/labels$/, (req, [o, r, n], _b, url) => {
      this.requireInstallationToken(req);
      return [200, this.page((this.issueLabels.get(`${o}/${r}#${n}`) ?? []).map((name) => ({ name, color: this.labels.get(name) })), url)];
    });
    this.route("POST", /^\/repos\/([^/]+)\/([^/]+)\/labels$/, (req, _p, body) => {
      this.requireInstallationToken(req);
      const { name, color } = body as { name: string; color: string };
      if (this.labels.has(name)) return [422, { message: "Validation Failed", errors: [{ code: "already_exists" }] }];
      this.labels.set(name, color);
      return [201, { name, color }];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)$/, (req, [o, r]) => {
      this.requireInstallationToken(req, o);
      return [200, { id: this.repositoryIds.get(`${o}/${r}`) ?? 4242, name: r, full_name: `${o}/${r}`, owner: { login: o }, default_branch: "main" }];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/installation$/, (req, [o]) => {
      this.requireAppJwt(req);
      const id = this.installations.get(o!);
      if (id === undefined) return [404, { message: "Not Found" }];
      return [200, { id, account: { login: o }, app_id: this.app.id }];
    });
    // A file at a commit, read from the real repository (base64, as GitHub answers up to 1 MB; past it, no content).
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/, async (req, [o, r, file], _b, url) => {
      this.requireInstallationToken(req, o);
      const ref = url.searchParams.get("ref");
      const name = decodeURIComponent(file!);
      if (!ref || !/^[0-9a-f]{40}$/.test(ref)) throw new Unexpected(`contents asked without a commit sha: ref=${ref}`);
      const gitDir = path.join(this.gitRoot, o!, `${r}.git`);
      let content: Buffer;
      try {
        content = execFileSync("git", ["--git-dir", gitDir, "show", `${ref}:${name}`], { stdio: ["ignore", "pipe", "ignore"] });
      } catch {
        return [404, { message: "Not Found" }];
      }
      const base = { type: "file", name: path.basename(name), path: name, sha: ref, size: content.length };
      return [200, content.length > 1024 ** 2 ? { ...base, encoding: "none", content: "" } : { ...base, encoding: "base64", content: content.toString("base64") }];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/issues$/, (req, [o, r], _b, url) => {
      this.requireInstallationToken(req);
      const label = url.searchParams.get("labels");
      const state = url.searchParams.get("state") ?? "open";
      const found = this.issues.filter((i) => i.repo === `${o}/${r}` && (state === "all" || i.state === state) && (!label || i.labels.includes(label)));
      return [200, this.page(found.map((i) => ({ number: i.number, title: i.title, body: i.body, state: i.state, labels: i.labels.map((name) => ({ name })), user: i.user, performed_via_github_app: this.performedViaApp ? i.performed_via_github_app : null })), url)];
    });
    this.route("POST", /^\/repos\/([^/]+)\/([^/]+)\/issues$/, (req, [o, r], body) => {
      this.requireInstallationToken(req);
      const { title, body: text, labels } = body as { title: string; body: string; labels?: string[] };
      const issue = { repo: `${o}/${r}`, number: this.nextId++, title, body: text, labels: labels ?? [], state: "open" as const, user: { login: this.botLogin, type: "Bot" }, performed_via_github_app: this.app };
      this.issues.push(issue);
      return [201, { number: issue.number, title, body: text, state: "open" }];
    });
    this.route("PATCH", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)$/, (req, [o, r, n], body) => {
      this.requireInstallationToken(req);
      const issue = this.issues.find((i) => i.repo === `${o}/${r}` && i.number === Number(n));
      if (!issue) throw new Unexpected(`no issue ${o}/${r}#${n}`);
      if (issue.user.login !== this.botLogin) throw new Unexpected(`PATCH of issue #${n} by ${issue.user.login}: plangate edits only its own issues`);
      Object.assign(issue, body as object);
      return [200, { number: issue.number, state: issue.state, body: issue.body }];
    });
    this.route("POST", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/labels$/, (req, [o, r, n], body) => {
      this.requireInstallationToken(req);
      const key = `${o}/${r}#${n}`;
      const names = (body as { labels: string[] }).labels;
      for (const name of names) if (!this.labels.has(name)) throw new Unexpected(`label ${name} added before it exists`);
      this.issueLabels.set(key, [...new Set([...(this.issueLabels.get(key) ?? []), ...names])]);
      return [200, this.issueLabels.get(key)!.map((name) => ({ name }))];
    });
    this.route("PUT", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/labels$/, (req, [o, r, n], body) => {
      this.requireInstallationToken(req);
      const key = `${o}/${r}#${n}`;
      const names = (body as { labels: string[] }).labels;
      // As GitHub does, a label the repository does not have yet is created (in its default colour).
      for (const name of names) if (!this.labels.has(name)) this.labels.set(name, "ededed");
      this.issueLabels.set(key, [...new Set(names)]);
      return [200, names.map((name) => ({ name }))];
    });
    this.route("DELETE", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/labels\/([^/]+)$/, (req, [o, r, n, name]) => {
      this.requireInstallationToken(req);
      const key = `${o}/${r}#${n}`;
      const label = decodeURIComponent(name!);
      if (!(this.issueLabels.get(key) ?? []).includes(label)) return [404, { message: "Label does not exist" }];
      this.issueLabels.set(key, this.issueLabels.get(key)!.filter((l) => l !== label));
      return [200, []];
    });
    this.route("POST", /^\/repos\/([^/]+)\/([^/]+)\/check-runs$/, (req, [o, r], body) => {
      this.requireInstallationToken(req);
      const run = { id: this.nextId++, repo: `${o}/${r}`, ...(body as Omit<CheckRun, "id" | "repo">) };
      this.checkRuns.push(run);
      return [201, run];
    });
    this.route("PATCH", /^\/repos\/([^/]+)\/([^/]+)\/check-runs\/(\d+)$/, (req, [o, r, id], body) => {
      this.requireInstallationToken(req);
      const run = this.checkRuns.find((c) => c.id === Number(id) && c.repo === `${o}/${r}`);
      if (!run) return [404, { message: "Not Found" }];
      Object.assign(run, body);
      return [200, run];
    });
    this.route("GET", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/, (req, [o, r, n], _b, url) => {
      this.requireInstallationToken(req);
      const listed = this.comments.filter((c) => c.repo === `${o}/${r}` && c.issue === Number(n));
      return [200, this.page(listed.map((c) => ({ ...c, performed_via_github_app: this.performedViaApp ? (c.performed_via_github_app ?? null) : null })), url)];
    });
    this.route("POST", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/, (req, [o, r, n], body) => {
      this.requireInstallationToken(req);
      const text = (body as { body: string }).body;
      if (text.length > 65_536) return [422, { message: "body is too long (maximum is 65536 characters)" }];
      const comment = { id: this.nextId++, repo: `${o}/${r}`, issue: Number(n), body: text, user: { login: this.botLogin, type: "Bot" }, performed_via_github_app: this.app };
      this.comments.push(comment);
      return [201, comment];
    });
    this.route("PATCH", /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/, (req, [o, r, id], body) => {
      this.requireInstallationToken(req);
      const comment = this.comments.find((c) => c.id === Number(id) && c.repo === `${o}/${r}`);
      if (!comment) return [404, { message: "Not Found" }];
      // GitHub would let the App do it; plangate must never (DESIGN §3): edits of other people's comments fail the test.
      if (comment.user.login !== this.botLogin) throw new Unexpected(`PATCH of comment ${id} by ${comment.user.login}: plangate edits only its own comments`);
      const text = (body as { body: string }).body;
      if (text.length > 65_536) return [422, { message: "body is too long (maximum is 65536 characters)" }];
      comment.body = text;
      return [200, comment];
    });
    this.route("DELETE", /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/, (req, [o, r, id]) => {
      this.requireInstallationToken(req);
      const index = this.comments.findIndex((c) => c.id === Number(id) && c.repo === `${o}/${r}`);
      if (index < 0) return [404, { message: "Not Found" }];
      if (this.comments[index]!.user.login !== this.botLogin) throw new Unexpected(`DELETE of comment ${id} by ${this.comments[index]!.user.login}: plangate deletes only its own comments`);
      this.comments.splice(index, 1);
      return [204, undefined];
    });
    this.oauthRoutes();
  }

  /** GitHub's web OAuth endpoints (at the root, outside /api/v3) and the API calls made with a user's token. */
  private oauthRoutes(): void {
    this.webRoutes.push(["GET", /^\/login\/oauth\/authorize$/, (_req, res, url) => {
      const clientId = url.searchParams.get("client_id");
      const redirectUri = url.searchParams.get("redirect_uri");
      const state = url.searchParams.get("state");
      if (!this.oauthApp || clientId !== this.oauthApp.clientId) throw new Unexpected(`authorize with unknown client_id ${clientId}`);
      if (!redirectUri || !state) throw new Unexpected("authorize without redirect_uri or state");
      if (!this.oauthUser) throw new Unexpected("authorize: no fake.oauthUser to log in as");
      const code = `code${this.nextId++}`;
      this.oauthCodes.set(code, this.oauthUser);
      const back = new URL(redirectUri);
      back.searchParams.set("code", code);
      back.searchParams.set("state", state);
      res.writeHead(302, { location: back.toString() }).end();
    }]);
    this.webRoutes.push(["POST", /^\/login\/oauth\/access_token$/, (req, res, _url, raw) => {
      const text = raw.toString("utf8");
      const fields = String(req.headers["content-type"]).startsWith("application/json") ? (JSON.parse(text) as Record<string, string>) : Object.fromEntries(new URLSearchParams(text));
      if (req.headers.accept !== "application/json") throw new Unexpected("access_token without Accept: application/json");
      if (!this.oauthApp || fields.client_id !== this.oauthApp.clientId || fields.client_secret !== this.oauthApp.clientSecret) throw new Unexpected("access_token with a wrong client id or secret");
      const login = this.oauthCodes.get(fields.code ?? "");
      this.oauthCodes.delete(fields.code ?? "");
      const body = login ? { access_token: this.issueUserToken(login), token_type: "bearer", scope: "" } : { error: "bad_verification_code", error_description: "The code passed is incorrect or expired." };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    }]);
    this.route("GET", /^\/user$/, (req) => [200, { login: this.requireUserToken(req), type: "User" }]);
    this.route("GET", /^\/user\/installations$/, (req, _p, _b, url) => {
      const login = this.requireUserToken(req);
      const installations = this.userRepos.get(login)?.length ? [{ id: 424242, account: { login: "Codertocat" } }] : [];
      return [200, { total_count: installations.length, installations: this.page(installations, url) }];
    });
    this.route("GET", /^\/user\/installations\/(\d+)\/repositories$/, (req, [id], _b, url) => {
      const login = this.requireUserToken(req);
      if (id !== "424242" || !this.userRepos.get(login)?.length) return [404, { message: "Not Found" }];
      const repos = this.userRepos.get(login)!;
      return [200, { total_count: repos.length, repositories: this.page(repos, url) }];
    });
  }

  /** A user token for `login`, as the OAuth exchange issues (tests may call it to act as a user directly). */
  issueUserToken(login: string): string {
    const token = `gho_fake${this.nextId++}`;
    this.userTokens.set(token, login);
    return token;
  }

  private requireUserToken(req: http.IncomingMessage): string {
    const token = /^(?:token|Bearer) (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const login = token && this.userTokens.get(token);
    if (!login) throw new Unexpected(`user endpoint called without an issued user token: ${req.method} ${req.url}`);
    return login;
  }

  /** Adds or replaces an endpoint (path relative to /api/v3). */
  route(method: string, pattern: RegExp, handler: Route): void {
    this.routes.unshift([method, pattern, handler]);
  }

  get host(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
  }

  async stop(): Promise<void> {
    await this.hook.idle();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    // The repositories it served and the tests' work trees (GitRepo) with them.
    rmSync(this.gitRoot, { recursive: true, force: true });
  }

  /** Adds a comment as a person (or another App's bot) would post it, e.g. one planted by an attacker. */
  plantComment(repo: string, issue: number, body: string, user: { login: string; type: string }, performedVia: { id: number; slug: string } | null = null): Comment {
    const comment = { id: this.nextId++, repo, issue, body, user, performed_via_github_app: performedVia };
    this.comments.push(comment);
    return comment;
  }

  commentsOn(repo: string, issue: number): Comment[] {
    return this.comments.filter((c) => c.repo === repo && c.issue === issue);
  }

  private page<T>(items: T[], url: URL): T[] {
    const perPage = Number(url.searchParams.get("per_page") ?? 30);
    const page = Number(url.searchParams.get("page") ?? 1);
    return items.slice((page - 1) * perPage, page * perPage);
  }

  /** One page of `items`, with the Link header that leads a client to the next one, as GitHub sends it. */
  private linkedPage<T>(items: T[], url: URL): Paged<T> {
    const page = Number(url.searchParams.get("page") ?? 1);
    const next = new URL(url.toString());
    next.searchParams.set("page", String(page + 1));
    const shown = this.page(items, url);
    const more = (page - 1) * Number(url.searchParams.get("per_page") ?? 30) + shown.length < items.length;
    return new Paged(shown, more ? `${next.pathname}${next.search}` : undefined);
  }

  private requireAppJwt(req: http.IncomingMessage): void {
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const [header, payload, signature] = token?.split(".") ?? [];
    if (!header || !payload || !signature) throw new Unexpected("app endpoint called without an app JWT");
    const ok = verifySignature("RSA-SHA256", Buffer.from(`${header}.${payload}`), createPublicKey(this.appPublicKeyPem), Buffer.from(signature, "base64url"));
    if (!ok) throw new Unexpected("app JWT signature does not verify with the app's key");
  }

  /** An issued installation token; for an account listed in `installations`, one of that account's own installation. */
  private requireInstallationToken(req: http.IncomingMessage, owner?: string): void {
    const token = /^token (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (!token || !this.issuedTokens.includes(token)) throw new Unexpected(`installation endpoint called without an issued token: ${req.method} ${req.url}`);
    const installation = owner === undefined ? undefined : this.installations.get(owner);
    if (installation !== undefined && this.tokenInstallations.get(token) !== installation) {
      throw new Unexpected(`${owner}'s repository read with another installation's token (${this.tokenInstallations.get(token)}, not ${installation}): ${req.method} ${req.url}`);
    }
  }

  /**
   * Makes the next `times` requests of `method` to an API path matching `path`
   * fail with `status` (and `headers`, `message`: a rate limit's retry-after or
   * x-ratelimit-reset; a function gives them at answer time). A git path (outside /api/v3, e.g. `/o/r.git/git-upload-pack`) fails the same way.
   */
  fail(method: string, path: RegExp, status: number, times: number, answer: { headers?: FaultHeaders; message?: string } = {}): void {
    this.faults.push({ method, path, status, times, ...answer });
  }

  /** Drops every fault not yet answered. */
  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Answers a fault's response if one matches (counting it down). */
  private faulted(method: string | undefined, path: string, res: http.ServerResponse): boolean {
    const fault = this.faults.find((f) => f.times > 0 && f.method === method && f.path.test(path));
    if (!fault) return false;
    fault.times--;
    res.writeHead(fault.status, { "content-type": "application/json", ...(typeof fault.headers === "function" ? fault.headers() : fault.headers) }).end(JSON.stringify({ message: fault.message ?? "Server Error" }));
    return true;
  }

  /** Requests made so far to an API path matching `path` with `method`. */
  requestsTo(method: string, path: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && path.test(r.path.replace(API, "")));
  }

  /**
   * Holds the next API request matching `method` and `path` (after /api/v3) until release():
   * `reached` resolves when plangate has sent it.
   */
  hold(method: string, path: RegExp): { reached: Promise<void>; release(): void } {
    let reached = () => {};
    let release = () => {};
    const reachedP = new Promise<void>((r) => (reached = r));
    this.holds.push({ method, path, reached, released: new Promise<void>((r) => (release = r)) });
    return { reached: reachedP, release: () => release() };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    this.requests.push({ method: req.method ?? "", path: url.pathname + url.search, authorization: req.headers.authorization, at: Date.now() });
    try {
      const web = this.webRoutes.find(([method, pattern]) => method === req.method && pattern.test(url.pathname));
      if (web) return web[2](req, res, url, await readBody(req));
      if (!url.pathname.startsWith(API)) return this.faulted(req.method, url.pathname, res) ? undefined : await this.serveGit(req, res, url);
      const raw = await readBody(req);
      const body = raw.length ? JSON.parse(raw.toString("utf8")) : undefined;
      const apiPath = url.pathname.slice(API.length);
      const held = this.holds.findIndex((h) => h.method === req.method && h.path.test(apiPath));
      if (held >= 0) {
        const [hold] = this.holds.splice(held, 1);
        hold!.reached();
        await hold!.released;
      }
      if (this.faulted(req.method, apiPath, res)) return;
      for (const [method, pattern, handler] of this.routes) {
        const match = method === req.method ? pattern.exec(apiPath) : null;
        if (!match) continue;
        const [status, answer] = await handler(req, match.slice(1), body, url);
        const payload = answer instanceof Paged ? answer.items : answer;
        const link = answer instanceof Paged && answer.next ? { link: `<http://${req.headers.host}${answer.next}>; rel="next"` } : {};
        res.writeHead(status, { "content-type": "application/json", "x-ratelimit-remaining": String(--this.rateLimitRemaining), ...link });
        res.end(payload === undefined ? undefined : JSON.stringify(payload));
        return;
      }
      throw new Unexpected(`no route for ${req.method} ${url.pathname}`);
    } catch (error) {
      const message = error instanceof Unexpected ? error.message : `fake failed: ${(error as Error).stack}`;
      this.unexpected.push(message);
      res.writeHead(error instanceof Unexpected ? 418 : 500, { "content-type": "application/json" });
      res.end(JSON.stringify({ message }));
    }
  }

  /** When true, git is served as by a server that knows only protocol version 0 (it ignores the Git-Protocol header). */
  gitProtocolV0Only = false;

  /** git's own http-backend program (run directly: through `git http-backend` it is one process more per request). */
  private readonly httpBackend = path.join(execFileSync("git", ["--exec-path"], { encoding: "utf8" }).trim(), "git-http-backend");

  /**
   * Protocol v2's capability advertisement (`GET info/refs` asking for version 2), per repository: it lists no refs,
   * so it is the same bytes every time. Answered from memory after the first, as a server would, rather than with
   * two process starts (git-http-backend, upload-pack) whose time would be counted as the client's.
   */
  private readonly v2Adverts = new Map<string, { status: number; headers: Record<string, string>; body: Buffer }>();

  /** Smart HTTP through the real `git http-backend`, for clients with an issued installation token. */
  private async serveGit(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    if (!/^\/[^/]+\/[^/]+\.git\/(info\/refs|git-upload-pack)$/.test(url.pathname)) throw new Unexpected(`no git route for ${req.method} ${url.pathname}`);
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const [user, token] = basic ? Buffer.from(basic, "base64").toString().split(":") : [];
    if (user !== "x-access-token" || !token || !this.issuedTokens.includes(token)) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="GitHub"' }).end();
      return;
    }
    const gitProtocol = this.gitProtocolV0Only ? "" : String(req.headers["git-protocol"] ?? "");
    const advert = req.method === "GET" && url.pathname.endsWith("/info/refs") && /version=2/.test(gitProtocol) ? `${url.pathname}${url.search}` : undefined;
    const remembered = advert && this.v2Adverts.get(advert);
    if (remembered) {
      res.writeHead(remembered.status, remembered.headers).end(remembered.body);
      return;
    }
    const body = await readBody(req);
    const child = spawn(this.httpBackend, [], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: this.gitRoot,
        GIT_HTTP_EXPORT_ALL: "1",
        REQUEST_METHOD: req.method,
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers["content-type"] ?? "",
        CONTENT_LENGTH: String(body.length),
        HTTP_CONTENT_ENCODING: req.headers["content-encoding"] ?? "",
        GIT_PROTOCOL: gitProtocol,
        REMOTE_ADDR: "127.0.0.1",
      },
    });
    child.stdin.on("error", () => undefined); // the client went away; git's exit says the rest
    child.stdin.end(body);
    const out = await readBody(child.stdout);
    const split = out.indexOf("\r\n\r\n");
    const head = out.subarray(0, split).toString();
    const headers: Record<string, string> = {};
    let status = 200;
    for (const line of head.split("\r\n")) {
      const [name, ...rest] = line.split(":");
      const value = rest.join(":").trim();
      if (name?.toLowerCase() === "status") status = Number(value.split(" ")[0]);
      else if (name) headers[name] = value;
    }
    if (advert && status === 200) this.v2Adverts.set(advert, { status, headers, body: out.subarray(split + 4) });
    res.writeHead(status, headers);
    res.end(out.subarray(split + 4));
  }
}

class Unexpected extends Error {}

/** A ref's commit in a bare repository: its loose ref file, else its line in packed-refs. */
async function refSha(gitDir: string, ref: string): Promise<string | undefined> {
  const loose = await readFile(path.join(gitDir, ref), "utf8").catch(() => undefined);
  if (loose) return loose.trim();
  const packed = await readFile(path.join(gitDir, "packed-refs"), "utf8").catch(() => "");
  return packed.split("\n").find((line) => line.endsWith(` ${ref}`))?.split(" ")[0];
}

function readBody(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}
