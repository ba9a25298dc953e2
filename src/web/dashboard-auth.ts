import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { Pool } from "../db/pool.js";
import { consumeOAuthState, createSession, deleteSession, findSession, storeOAuthState, updateSessionRepos, type DashboardSession, type RepoAccess } from "../db/sessions.js";
import { seal, unseal } from "../plans/seal.js";
import type { Templates } from "../render/templates.js";
import { cookieHeader, cookieName, readCookie } from "./cookies.js";
import { GitHubOAuth, OAuthError } from "./github-oauth.js";
import { formFields, redirect, sendHtml } from "./html-response.js";

export const SESSION_COOKIE = "plangate_session";
export const STATE_COOKIE = "plangate_oauth_state";
const SESSION_TTL_MS = 8 * 3_600_000;
const STATE_TTL_MS = 10 * 60_000;
/** How long a session trusts the repositories GitHub last listed for its user: access taken away shows within this. */
export const REPOS_RECHECK_MS = 5 * 60_000;

const token = () => randomBytes(32).toString("base64url");
const hashOf = (value: string) => createHash("sha256").update(value).digest("hex");

export interface SessionInfo extends DashboardSession {
  idHash: string;
}

export interface DashboardAuthDeps {
  pool: Pool;
  templates: Templates;
  encryptionKey: Buffer;
  /** Where users reach this server (the run links' base): the OAuth callback and the cookies' Secure flag follow it. */
  publicUrl: string;
  oauth: GitHubOAuth;
  log: Logger;
}

/**
 * "Login with GitHub" and the sessions it opens: /login, /login/callback,
 * POST /logout; sessions in Postgres behind an HttpOnly, SameSite=Lax cookie
 * (`__Host-`, Secure when the public URL is https), a CSRF token per session.
 * A session's repositories are asked of GitHub again every REPOS_RECHECK_MS.
 */
export class DashboardAuth {
  private readonly secure: boolean;
  private readonly origin: string;
  private readonly sessionCookie: string;
  private readonly stateCookie: string;
  /** The state cookie goes to /login only, unless `__Host-` asks for Path=/. */
  private readonly statePath: string;

  constructor(private readonly deps: DashboardAuthDeps) {
    this.secure = new URL(deps.publicUrl).protocol === "https:";
    this.origin = new URL(deps.publicUrl).origin;
    this.sessionCookie = cookieName(SESSION_COOKIE, this.secure);
    this.stateCookie = cookieName(STATE_COOKIE, this.secure);
    this.statePath = this.secure ? "/" : "/login";
  }

  private get callbackUrl(): string {
    return `${this.deps.publicUrl}/login/callback`;
  }

  /** Answers /login, /login/callback and /logout; false for any other path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname === "/login" && req.method === "GET") return this.login(res);
    if (url.pathname === "/login/callback" && req.method === "GET") return this.callback(req, res, url);
    if (url.pathname === "/logout" && req.method === "POST") return this.logout(req, res);
    return false;
  }

  private async login(res: ServerResponse): Promise<true> {
    const state = token();
    await storeOAuthState(this.deps.pool, hashOf(state), STATE_TTL_MS);
    const cookie = cookieHeader(this.stateCookie, state, { path: this.statePath, maxAge: STATE_TTL_MS / 1000, secure: this.secure });
    return redirect(res, this.deps.oauth.authorizeUrl(this.callbackUrl, state), { "set-cookie": cookie }, 302);
  }

  private fail(res: ServerResponse, status: number, failure: string): true {
    const words = dashboardText(this.deps.templates);
    return sendHtml(res, status, this.deps.templates.render("dashboard-login", { title: words("login-failed"), failure }));
  }

  private async callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<true> {
    const state = url.searchParams.get("state") ?? "";
    const code = url.searchParams.get("code") ?? "";
    const cookieState = readCookie(req, this.stateCookie) ?? "";
    const clearState = cookieHeader(this.stateCookie, "", { path: this.statePath, maxAge: 0, secure: this.secure });
    // The state must be the one this browser was given and one this server issued, used once.
    if (!state || !code || !sameText(state, cookieState) || !(await consumeOAuthState(this.deps.pool, hashOf(state)))) {
      return this.fail(res, 400, dashboardText(this.deps.templates)("login-unverified"));
    }
    let login: string;
    let userToken: string;
    let repos;
    try {
      userToken = await this.deps.oauth.exchange(code, this.callbackUrl);
      login = await this.deps.oauth.login(userToken);
      repos = await this.deps.oauth.readableRepos(userToken);
    } catch (error) {
      if (!(error instanceof OAuthError) && !(error instanceof TypeError)) throw error;
      this.deps.log.warn({ err: error.message }, "dashboard login failed at GitHub");
      return this.fail(res, 502, dashboardText(this.deps.templates)("login-not-completed", { error: error.message }));
    }
    const id = token();
    await createSession(this.deps.pool, hashOf(id), { login, token: seal(this.deps.encryptionKey, Buffer.from(userToken)), repos, csrf: token() }, SESSION_TTL_MS);
    this.deps.log.info({ login, repos: repos.length }, "dashboard login");
    const cookie = cookieHeader(this.sessionCookie, id, { path: "/", maxAge: SESSION_TTL_MS / 1000, secure: this.secure });
    return redirect(res, "/", { "set-cookie": [cookie, clearState] });
  }

  private async logout(req: IncomingMessage, res: ServerResponse): Promise<true> {
    const session = await this.sessionOf(req);
    if (session && !this.formAllowed(req, session)) return forbidden(res, this.deps.templates);
    if (session) await deleteSession(this.deps.pool, session.idHash);
    return redirect(res, "/", { "set-cookie": cookieHeader(this.sessionCookie, "", { path: "/", maxAge: 0, secure: this.secure }) });
  }

  /**
   * The request's unexpired session, if it has one (one session cookie, not
   * two). Its repositories are asked of GitHub again when the last answer is
   * over REPOS_RECHECK_MS old; if GitHub does not answer, there is no session.
   */
  async sessionOf(req: IncomingMessage): Promise<SessionInfo | undefined> {
    const id = readCookie(req, this.sessionCookie);
    if (!id) return undefined;
    const idHash = hashOf(id);
    const found = await findSession(this.deps.pool, idHash, REPOS_RECHECK_MS);
    if (!found) return undefined;
    const { reposStale, ...session } = found;
    if (!reposStale) return { ...session, idHash };
    let repos: RepoAccess[];
    try {
      repos = await this.liveRepos(session);
    } catch (error) {
      if (!(error instanceof OAuthError) && !(error instanceof TypeError)) throw error;
      this.deps.log.warn({ login: session.login, err: error.message }, "dashboard session: GitHub did not list the user's repositories again; the session is refused until it does");
      return undefined;
    }
    await updateSessionRepos(this.deps.pool, idHash, repos);
    return { ...session, repos, idHash };
  }

  /** The repositories the session's user can read now, asked of GitHub with their own token. */
  async liveRepos(session: DashboardSession): Promise<RepoAccess[]> {
    return this.deps.oauth.readableRepos(unseal(this.deps.encryptionKey, session.token).toString("utf8"));
  }

  /**
   * A form POST counts only with the session's CSRF token, and from this
   * server's own pages when the browser says where from. Pages are sent with
   * Referrer-Policy: no-referrer, under which a browser's form POST says
   * `Origin: null`: that counts only when the browser also says the request
   * came from this same origin (Sec-Fetch-Site).
   */
  formAllowed(req: IncomingMessage, session: SessionInfo): boolean {
    const origin = req.headers.origin;
    const sameSite = req.headers["sec-fetch-site"];
    if (sameSite !== undefined && sameSite !== "same-origin") return false;
    if (origin && origin !== this.origin && !(origin === "null" && sameSite === "same-origin")) return false;
    return sameText(formFields(req).get("csrf") ?? "", session.csrf);
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length > 0 && x.length === y.length && timingSafeEqual(x, y);
}

/** What templates/dashboard-text.hbs words: page titles, then sentences. */
export type DashboardTextKind =
  | "runs" | "locks" | "audit" | "drift" | "log-in" | "unconfigured" | "login-failed" | "refused"
  | "login-unverified" | "login-not-completed" | "form-not-ours" | "log-in-first" | "permission-unconfirmed" | "release-needs-write";

/** The dashboard's titles and sentences from templates/dashboard-text.hbs (raw text: the page showing it escapes it). */
export const dashboardText =
  (templates: Templates) =>
  (kind: DashboardTextKind, data: object = {}): string =>
    templates.render("dashboard-text", { ...data, kind }).trim();

/** A refused form: `failure` says why (default: the form did not come from a dashboard page). */
export function forbidden(res: ServerResponse, templates: Templates, failure?: string): true {
  const words = dashboardText(templates);
  return sendHtml(res, 403, templates.render("dashboard-login", { title: words("refused"), failure: failure ?? words("form-not-ours") }));
}
