import type { RepoAccess } from "../db/sessions.js";

export interface OAuthClientSettings {
  clientId: string;
  clientSecret: string;
  /** e.g. https://github.com or http://ghe.local */
  webUrl: string;
  /** e.g. https://api.github.com or http://ghe.local/api/v3 */
  apiUrl: string;
}

/** GitHub answered a login step with something other than success. */
export class OAuthError extends Error {}

const PER_PAGE = 100;
const MAX_PAGES = 50;

/**
 * The GitHub side of "Login with GitHub" through the App's OAuth client:
 * the authorize URL, the code exchange, and what the user's own token can see.
 */
export class GitHubOAuth {
  constructor(private readonly settings: OAuthClientSettings) {}

  authorizeUrl(redirectUri: string, state: string): string {
    const query = new URLSearchParams({ client_id: this.settings.clientId, redirect_uri: redirectUri, state });
    return `${this.settings.webUrl}/login/oauth/authorize?${query}`;
  }

  /** Trades the code GitHub sent back for the user's token. */
  async exchange(code: string, redirectUri: string): Promise<string> {
    const res = await fetch(`${this.settings.webUrl}/login/oauth/access_token`, {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      body: JSON.stringify({ client_id: this.settings.clientId, client_secret: this.settings.clientSecret, code, redirect_uri: redirectUri }),
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await res.json().catch(() => ({}))) as { access_token?: string; error?: string; error_description?: string };
    if (!res.ok || !body.access_token) throw new OAuthError(`GitHub refused the login code: ${body.error_description ?? body.error ?? `HTTP ${res.status}`}`);
    return body.access_token;
  }

  private async api<T>(token: string, path: string): Promise<T> {
    const res = await fetch(`${this.settings.apiUrl}${path}`, {
      headers: { accept: "application/vnd.github+json", authorization: `Bearer ${token}`, "x-github-api-version": "2022-11-28" },
      signal: AbortSignal.timeout(15_000),
    });
    if (!res.ok) throw new OAuthError(`GitHub answered ${res.status} to GET ${path.split("?")[0]}`);
    return (await res.json()) as T;
  }

  async login(token: string): Promise<string> {
    return (await this.api<{ login: string }>(token, "/user")).login;
  }

  private async pages<T>(token: string, path: string, key: string): Promise<T[]> {
    const all: T[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const items = (await this.api<Record<string, T[]>>(token, `${path}?per_page=${PER_PAGE}&page=${page}`))[key] ?? [];
      all.push(...items);
      if (items.length < PER_PAGE) break;
    }
    return all;
  }

  /** The repositories of the App's installations that the token's user can read, with whether they can write. */
  async readableRepos(token: string): Promise<RepoAccess[]> {
    type Repo = { full_name: string; permissions?: { admin?: boolean; maintain?: boolean; push?: boolean; pull?: boolean } };
    const installations = await this.pages<{ id: number }>(token, "/user/installations", "installations");
    const repos = new Map<string, RepoAccess>();
    for (const installation of installations) {
      for (const r of await this.pages<Repo>(token, `/user/installations/${installation.id}/repositories`, "repositories")) {
        const p = r.permissions ?? {};
        if (!(p.pull || p.push || p.maintain || p.admin)) continue;
        repos.set(r.full_name.toLowerCase(), { repo: r.full_name, write: !!(p.push || p.maintain || p.admin) });
      }
    }
    return [...repos.values()].sort((a, b) => (a.repo < b.repo ? -1 : 1));
  }
}
