import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { appendAuditEvent } from "../audit/audit-log.js";
import { advanceChainCheckpoint } from "../audit/chain-checkpoint.js";
import { auditCounts, auditEvents, currentLocks, driftStatus, recentRuns, releaseLock } from "../db/dashboard-queries.js";
import { inTransaction, type Pool } from "../db/pool.js";
import type { RepoAccess } from "../db/sessions.js";
import type { Templates } from "../render/templates.js";
import { DashboardAuth, dashboardText, forbidden, type SessionInfo } from "./dashboard-auth.js";
import { GitHubOAuth, OAuthError } from "./github-oauth.js";
import { formFields, redirect, sendHtml } from "./html-response.js";
import { githubNumberUrl } from "./github-links.js";
import type { RunLinks } from "./run-links.js";

export interface DashboardDeps {
  pool: Pool;
  templates: Templates;
  runLinks: RunLinks;
  encryptionKey: Buffer;
  publicUrl: string;
  githubWebUrl: string;
  githubApiUrl: string;
  /** The App's OAuth client; without it the dashboard only says it needs one. */
  oauthClient?: { id: string; secret: string };
  log: Logger;
}

const PAGES = new Set(["/", "/locks", "/audit", "/drift", "/locks/release", "/login", "/login/callback", "/logout"]);

/** A query-string value, trimmed; undefined when empty. */
const param = (url: URL, name: string) => url.searchParams.get(name)?.trim() || undefined;
/** The outcomes a run can show, for the filter. */
const OUTCOMES = ["succeeded", "failed", "running", "interrupted", "applied", "refused", "verified"];
const when = (d: Date) => d.toISOString().replace("T", " ").slice(0, 19) + " UTC";

/**
 * The dashboard: recent runs (/), locks (/locks, with release), the audit log
 * (/audit) and drift (/drift), for users logged in with GitHub, each seeing
 * only the repositories of the App's installations they can read.
 */
export function dashboardHandler(deps: DashboardDeps) {
  const { pool, templates } = deps;
  const words = dashboardText(templates);
  const auth = deps.oauthClient
    ? new DashboardAuth({
        pool,
        templates,
        encryptionKey: deps.encryptionKey,
        publicUrl: deps.publicUrl,
        log: deps.log,
        oauth: new GitHubOAuth({ clientId: deps.oauthClient.id, clientSecret: deps.oauthClient.secret, webUrl: deps.githubWebUrl, apiUrl: deps.githubApiUrl }),
      })
    : undefined;

  const prLink = (repo: string, number: number | null) => githubNumberUrl(deps.githubWebUrl, repo, "pull", number);
  const page = (res: ServerResponse, name: "runs" | "locks" | "audit" | "drift", session: SessionInfo, data: object, status = 200) =>
    sendHtml(res, status, templates.render(`dashboard-${name}`, { title: words(name), ...data, pages: true, user: session.login, csrf: session.csrf, [`on${name}`]: true }));

  const runs = async (res: ServerResponse, session: SessionInfo, repos: string[], url: URL) => {
    const pr = param(url, "pr");
    const filter = { repo: param(url, "repo"), pullNumber: pr && /^\d+$/.test(pr) ? Number(pr) : undefined, project: param(url, "project"), outcome: param(url, "outcome") };
    const rows = await recentRuns(pool, repos, filter);
    const view = rows.map((r) => ({ ...r, shortSha: r.sha.slice(0, 7), at: when(r.created_at), link: deps.runLinks.url(r.id), prUrl: prLink(r.repo, r.pull_number) }));
    return page(res, "runs", session, { runs: view, filter: { ...filter, pr }, repos: session.repos, outcomes: OUTCOMES });
  };

  const locks = async (res: ServerResponse, session: SessionInfo, repos: string[], url: URL) => {
    const writable = new Set(session.repos.filter((r) => r.write).map((r) => r.repo.toLowerCase()));
    const rows = (await currentLocks(pool, repos)).map((l) => ({ ...l, at: when(l.acquired_at), canRelease: writable.has(l.repo.toLowerCase()), prUrl: prLink(l.repo, l.pull_number) }));
    return page(res, "locks", session, { locks: rows, released: param(url, "released") });
  };

  const audit = async (res: ServerResponse, session: SessionInfo, repos: string[], url: URL) => {
    const filter = { repo: param(url, "repo"), action: param(url, "action") };
    // The chain is verified on from where the last load stopped (bounded work); the page counts only the user's repositories' events.
    const [rows, status] = await Promise.all([auditEvents(pool, repos, filter), advanceChainCheckpoint(pool)]);
    const counts = await auditCounts(pool, repos, status.through);
    const chain = { ok: !status.broken, verified: counts.verified, pending: counts.total - counts.verified, reason: status.broken?.reason };
    const events = rows.map(({ id: _globalId, ...e }) => ({ ...e, shortHash: e.hash.slice(0, 12), at: when(e.created_at), details: Object.keys(e.details ?? {}).length ? JSON.stringify(e.details) : "", shortSha: e.sha?.slice(0, 7), prUrl: prLink(e.repo, e.pull_number) }));
    return page(res, "audit", session, { events, filter, chain });
  };

  const drift = async (res: ServerResponse, session: SessionInfo, repos: string[]) => {
    const rows = (await driftStatus(pool, repos)).map((d) => ({ ...d, at: when(d.checked_at), shortSha: d.sha.slice(0, 7), issueUrl: githubNumberUrl(deps.githubWebUrl, d.repo, "issues", d.issue_number), [d.status]: true }));
    return page(res, "drift", session, { checks: rows });
  };

  /** POST /locks/release: the CSRF token, then write permission checked now with the user's own token, then delete + audit in one transaction. */
  const release = async (req: IncomingMessage, res: ServerResponse, session: SessionInfo) => {
    if (!auth!.formAllowed(req, session)) return forbidden(res, templates);
    const form = formFields(req);
    const key = { repo: form.get("repo") ?? "", project: form.get("project") ?? "", workspace: form.get("workspace") ?? "" };
    let access: RepoAccess | undefined;
    try {
      const live = await auth!.liveRepos(session);
      access = live.find((r) => r.repo.toLowerCase() === key.repo.toLowerCase());
    } catch (error) {
      if (!(error instanceof OAuthError) && !(error instanceof TypeError)) throw error;
      return forbidden(res, templates, words("permission-unconfirmed", { repo: key.repo, error: error.message }));
    }
    if (!access?.write) return forbidden(res, templates, words("release-needs-write", { repo: key.repo }));
    const pullNumber = await inTransaction(pool, async (tx) => {
      const holder = await releaseLock(tx, { ...key, repo: access.repo });
      if (holder !== undefined) {
        await appendAuditEvent(tx, { action: "lock.released", actor: session.login, repo: access.repo, pullNumber: holder, project: key.project, workspace: key.workspace, details: { reason: "dashboard" } });
      }
      return holder;
    });
    deps.log.info({ login: session.login, ...key, pullNumber }, "dashboard lock release");
    const released = pullNumber === undefined ? "none" : `${key.project}`;
    return redirect(res, `/locks?${new URLSearchParams({ released })}`);
  };

  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? "/", "http://plangate");
    if (!PAGES.has(url.pathname)) return false;
    if (!auth) return sendHtml(res, 503, templates.render("dashboard-login", { title: words("unconfigured"), unconfigured: true }));
    if (await auth.handle(req, res, url)) return true;
    const session = await auth.sessionOf(req);
    if (!session) {
      if (req.method !== "GET") return forbidden(res, templates, words("log-in-first"));
      return sendHtml(res, 401, templates.render("dashboard-login", { title: words("log-in") }));
    }
    const repos = session.repos.map((r) => r.repo.toLowerCase());
    if (req.method === "POST" && url.pathname === "/locks/release") return release(req, res, session);
    if (req.method !== "GET") return false;
    if (url.pathname === "/") return runs(res, session, repos, url);
    if (url.pathname === "/locks") return locks(res, session, repos, url);
    if (url.pathname === "/audit") return audit(res, session, repos, url);
    if (url.pathname === "/drift") return drift(res, session, repos);
    return false;
  };
}
