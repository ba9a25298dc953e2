import { jest } from "@jest/globals";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { bwrapWorks } from "../../src/sandbox/sandbox.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { startHarness, toolTest, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";

jest.setTimeout(240_000);

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = path.resolve("docs/screenshots");
const REPO = "Codertocat/Hello-World";
const CLIENT = { GITHUB_CLIENT_ID: "Iv1.plangatetest", GITHUB_CLIENT_SECRET: "test-client-secret-0123456789abcdef" };

/** Needs the browser, and terraform + bubblewrap for the plan that makes a run and a lock. */
const browserTest: typeof test = ((name: string, fn: Parameters<typeof toolTest>[3], timeout?: number) =>
  toolTest(existsSync(CHROMIUM) && !!findBinary("terraform") && bwrapWorks(), "chromium, terraform and bubblewrap", name, fn, timeout)) as typeof test;

let h: Harness;
let prs: PullRequests;
const profiles: string[] = [];
let base: string;

beforeAll(async () => {
  h = await startHarness(CLIENT);
  h.fake.oauthApp = { clientId: CLIENT.GITHUB_CLIENT_ID, clientSecret: CLIENT.GITHUB_CLIENT_SECRET };
  h.fake.userRepos.set("alice", [{ full_name: REPO, permissions: { admin: false, push: true, pull: true } }]);
  h.fake.userRepos.set("bob", [{ full_name: "Codertocat/Other", permissions: { admin: true, push: true, pull: true } }]);
  h.fake.userRepos.set("carol", [{ full_name: REPO, permissions: { admin: false, push: false, pull: true } }]);
  // The public URL (no PLANGATE_PUBLIC_URL): the OAuth callback and the cookies are on localhost, so the browser uses it too.
  base = `http://localhost:${h.app.port}`;
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo, "Codertocat", 1200);
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
  await h?.close();
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** Debian's chromium with a fresh, empty profile (user data dir): one browser per user, nothing shared. */
async function launch(): Promise<{ context: BrowserContext; page: Page }> {
  const profile = mkdtempSync(path.join(os.tmpdir(), "plangate-chromium-"));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 800 },
  });
  return { context, page: context.pages()[0] ?? (await context.newPage()) };
}

/** Logs `login` in through the fake GitHub's OAuth pages, in a fresh browser context. */
async function browserLogin(login: string): Promise<{ context: BrowserContext; page: Page }> {
  const { context, page } = await launch();
  const first = await page.goto(`${base}/`);
  expect(first?.status()).toBe(401);
  h.fake.oauthUser = login;
  await page.click("text=Log in with GitHub");
  await page.waitForSelector("#login"); // shown on logged-in pages only: the whole round trip through GitHub is done
  expect(page.url()).toBe(`${base}/`);
  expect(await page.textContent("#login")).toBe(login);
  return { context, page };
}

/** The session cookie of a logged-in context, as a Cookie header. */
async function cookieOf(context: BrowserContext): Promise<string> {
  const cookie = (await context.cookies(base)).find((c) => c.name === "plangate_session")!;
  return `plangate_session=${cookie.value}`;
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
const post = (pathname: string, cookie: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${base}${pathname}`, { method: "POST", redirect: "manual", headers: { cookie, "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(form).toString() });

describe("dashboard", () => {
  let p: Pr;

  browserTest("a user logs in with GitHub, lists runs, opens one, releases a lock and sees it audited; forms without the CSRF token are refused", async () => {
    p = await prs.open({ "dash/main.tf": 'resource "terraform_data" "web" {\n  input = "v1"\n}\nresource "terraform_data" "db" {\n  input = "v1"\n}\n' }, ["dash/main.tf"]);
    expect((await h.db.pool.query("select project, pull_number from locks")).rows).toEqual([{ project: "dash", pull_number: p.number }]);
    await h.db.pool.query("insert into drift_checks (repo, project, workspace, checked_at, sha, status, issue_number) values ($1, 'dash', 'default', now(), $2, 'drifted', 7), ($1, 'network', 'default', now(), $2, 'clean', null)", [REPO, p.sha]);

    const { context: loginContext, page: loginPage } = await launch();
    await loginPage.goto(`${base}/`);
    await shot(loginPage, "dashboard-login");
    await loginContext.close();

    const { context, page } = await browserLogin("alice");
    const [session] = (await context.cookies(base)).filter((c) => c.name === "plangate_session");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax", secure: false, path: "/" });

    // Runs: this PR's plan, filterable.
    const rows = page.locator("tr.run");
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toContain(`#${p.number}`);
    expect(await rows.first().textContent()).toContain("succeeded");
    // The PR number links to the PR on the GitHub the App talks to (here the fake GitHub Enterprise).
    const github = `${h.settings.githubWebUrl}/${REPO}`;
    expect(await page.getAttribute("tr.run td.pr a", "href")).toBe(`${github}/pull/${p.number}`);
    expect(await page.textContent("tr.run td.pr a")).toBe(`#${p.number}`);
    await shot(page, "dashboard-runs");
    await page.goto(`${base}/?pr=${p.number}&project=dash&outcome=succeeded&repo=${encodeURIComponent(REPO)}`);
    expect(await page.locator("tr.run").count()).toBe(1);
    await page.goto(`${base}/?outcome=failed`);
    expect(await page.locator("tr.run").count()).toBe(0);
    await page.goto(`${base}/?project=elsewhere`);
    expect(await page.locator("tr.run").count()).toBe(0);

    // Its run page, through the signed link.
    await page.goto(`${base}/`);
    await page.click("tr.run a");
    await page.waitForURL(/\/runs\/\d+\?expires=\d+&token=/);
    expect(await page.locator("section.resource").count()).toBe(2);
    expect(await page.textContent("body")).toContain("terraform_data.web");
    // It has the dashboard's navigation, a way back to all runs, and its PR linked to GitHub.
    expect(await page.locator("header#nav a").allTextContents()).toEqual(["Runs", "Locks", "Audit log", "Drift"]);
    expect(await page.getAttribute("a#all-runs", "href")).toBe("/");
    expect(await page.textContent("a#all-runs")).toBe("← All runs");
    expect(await page.getAttribute("main p a.gh", "href")).toBe(`${github}/pull/${p.number}`);
    await shot(page, "dashboard-run-page");
    // The run page is sent with the page headers; its one script (the filter) runs under the policy's nonce, nothing else would.
    const runHeaders = (await fetch(page.url())).headers;
    expect(runHeaders.get("content-security-policy")).toMatch(/^default-src 'none'; .*frame-ancestors 'none'.*; script-src 'nonce-[\w-]{24}'$/);
    expect([runHeaders.get("x-frame-options"), runHeaders.get("referrer-policy"), runHeaders.get("x-content-type-options")]).toEqual(["DENY", "no-referrer", "nosniff"]);
    await page.fill("#filter", "terraform_data.db");
    expect(await page.locator("section.resource:not(.hidden)").count()).toBe(1);
    await page.click("a#all-runs");
    await page.waitForURL(`${base}/`);
    expect(await page.locator("tr.run").count()).toBe(1);

    // Drift.
    await page.goto(`${base}/drift`);
    expect(await page.locator("tr.check").count()).toBe(2);
    expect(await page.locator("tr.check td.issue a").evaluateAll((links) => links.map((a) => a.getAttribute("href")))).toEqual([`${github}/issues/7`]);
    await shot(page, "dashboard-drift");

    // A POST without the CSRF token, or from another origin, is refused and changes nothing.
    const cookie = await cookieOf(context);
    const csrf = (await page.getAttribute("form[action='/logout'] input[name=csrf]", "value"))!;
    const lockForm = { repo: REPO, project: "dash", workspace: "default" };
    expect((await post("/locks/release", cookie, lockForm)).status).toBe(403);
    expect((await post("/locks/release", cookie, { ...lockForm, csrf: "x".repeat(csrf.length) })).status).toBe(403);
    expect((await post("/locks/release", cookie, { ...lockForm, csrf }, { origin: "http://evil.example" })).status).toBe(403);
    expect((await post("/logout", cookie, {})).status).toBe(403);
    expect((await h.db.pool.query("select count(*)::int as n from locks")).rows[0].n).toBe(1);

    // Locks: release with audit.
    await page.goto(`${base}/locks`);
    expect(await page.locator("tr.lock").count()).toBe(1);
    expect(await page.getAttribute("tr.lock td.pr a", "href")).toBe(`${github}/pull/${p.number}`);
    await shot(page, "dashboard-locks");
    await page.click("tr.lock button:has-text('Release')");
    await page.waitForURL(/\/locks\?released=dash/);
    expect(await page.textContent("main")).toContain("released");
    expect(await page.locator("tr.lock").count()).toBe(0);
    expect((await h.db.pool.query("select count(*)::int as n from locks")).rows[0].n).toBe(0);
    const audited = (await h.db.pool.query("select actor, repo, pull_number, project, workspace, details from audit_events where action = 'lock.released'")).rows;
    expect(audited).toEqual([{ actor: "alice", repo: REPO, pull_number: p.number, project: "dash", workspace: "default", details: { reason: "dashboard" } }]);

    await page.goto(`${base}/audit`);
    expect(await page.textContent("#chain")).toMatch(/Hash chain verified: all \d+ events/);
    await shot(page, "dashboard-audit");
    await page.goto(`${base}/audit?action=lock.released`);
    const events = page.locator("tr.event");
    expect(await events.count()).toBe(1);
    expect(await events.first().textContent()).toContain("alice");
    expect(await events.first().textContent()).toContain("dashboard");
    expect(await page.getAttribute("tr.event td.pr a", "href")).toBe(`${github}/pull/${p.number}`);

    // Logout ends the session: the old cookie opens nothing.
    await page.click("text=Log out");
    await page.waitForSelector("a.btn.primary");
    expect(await page.textContent("main")).toContain("Log in with GitHub");
    expect(await page.locator("#login").count()).toBe(0);
    expect((await fetch(`${base}/`, { headers: { cookie } })).status).toBe(401);
    await context.close();
  });

  browserTest("a user without access to the repository sees none of its runs, locks, audit events or drift, and cannot release its locks", async () => {
    await h.db.pool.query("insert into locks (repo, project, workspace, pull_number) values ($1, 'dash', 'default', $2) on conflict do nothing", [REPO, p.number]);
    const { context, page } = await browserLogin("bob");
    for (const pathname of ["/", "/locks", "/audit", "/drift"]) {
      await page.goto(`${base}${pathname}`);
      expect(await page.locator("tr.run, tr.lock, tr.event, tr.check").count()).toBe(0);
      expect(await page.content()).not.toContain("Hello-World");
    }
    await page.goto(`${base}/?repo=${encodeURIComponent(REPO)}`);
    expect(await page.locator("tr.run").count()).toBe(0);
    await page.goto(`${base}/`);
    await shot(page, "dashboard-no-access");
    const csrf = (await page.getAttribute("form[action='/logout'] input[name=csrf]", "value"))!;
    const refused = await post("/locks/release", await cookieOf(context), { repo: REPO, project: "dash", workspace: "default", csrf });
    expect(refused.status).toBe(403);
    await context.close();

    // Read without write: the lock is listed without a release button, and a crafted release is refused.
    const carol = await browserLogin("carol");
    await carol.page.goto(`${base}/locks`);
    expect(await carol.page.locator("tr.lock").count()).toBe(1);
    expect(await carol.page.locator("tr.lock button").count()).toBe(0);
    const carolCsrf = (await carol.page.getAttribute("form[action='/logout'] input[name=csrf]", "value"))!;
    expect((await post("/locks/release", await cookieOf(carol.context), { repo: REPO, project: "dash", workspace: "default", csrf: carolCsrf })).status).toBe(403);
    await carol.context.close();
    expect((await h.db.pool.query("select count(*)::int as n from locks")).rows[0].n).toBe(1);
  });

  test("every page but /login needs a session; the login state must come back to the browser that started it; cookies are HttpOnly and SameSite=Lax", async () => {
    for (const pathname of ["/", "/locks", "/audit", "/drift"]) {
      const res = await fetch(`${base}${pathname}`, { redirect: "manual" });
      expect(res.status).toBe(401);
      expect(await res.text()).toContain('href="/login"');
    }
    expect((await post("/locks/release", "", { repo: REPO, project: "dash", workspace: "default" })).status).toBe(403);
    expect((await fetch(`${base}/`, { headers: { cookie: "plangate_session=forged" } })).status).toBe(401);

    const start = await fetch(`${base}/login`, { redirect: "manual" });
    expect(start.status).toBe(302);
    const authorize = new URL(start.headers.get("location")!);
    expect(`${authorize.origin}${authorize.pathname}`).toBe(`${h.settings.githubWebUrl}/login/oauth/authorize`);
    expect(authorize.searchParams.get("client_id")).toBe(CLIENT.GITHUB_CLIENT_ID);
    expect(authorize.searchParams.get("redirect_uri")).toBe(`${base}/login/callback`);
    const stateCookie = start.headers.get("set-cookie")!;
    expect(stateCookie).toMatch(/^plangate_oauth_state=[\w-]{43}; Path=\/login; Max-Age=600; HttpOnly; SameSite=Lax$/);

    h.fake.oauthUser = "alice";
    const back = await fetch(authorize, { redirect: "manual" });
    const callback = back.headers.get("location")!;
    // Without the state cookie (another browser) the login is refused.
    expect((await fetch(callback, { redirect: "manual" })).status).toBe(400);
    const done = await fetch(callback, { redirect: "manual", headers: { cookie: stateCookie.split(";")[0]! } });
    expect(done.status).toBe(303);
    const sessionCookie = done.headers.getSetCookie().find((c) => c.startsWith("plangate_session="))!;
    expect(sessionCookie).toMatch(/^plangate_session=[\w-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Lax$/);
    // A state is used once.
    expect((await fetch(callback, { redirect: "manual", headers: { cookie: stateCookie.split(";")[0]! } })).status).toBe(400);
    const page = await fetch(`${base}/`, { headers: { cookie: sessionCookie.split(";")[0]! } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    // The session row holds a hash of the cookie and a sealed token, never either in clear.
    const { rows } = await h.db.pool.query("select id_hash, token from dashboard_sessions");
    const id = sessionCookie.split(";")[0]!.split("=")[1]!;
    expect(rows.some((r) => r.id_hash === id)).toBe(false);
    expect(rows.every((r) => !r.token.toString("latin1").includes("gho_fake"))).toBe(true);
  });
});

describe("dashboard without the OAuth client", () => {
  let bare: Harness;
  beforeAll(async () => {
    bare = await startHarness({ PLANGATE_WORKERS: "0" });
  });
  afterAll(async () => bare?.close());

  test("/ says the dashboard needs GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET", async () => {
    const res = await fetch(`${bare.url}/`);
    expect(res.status).toBe(503);
    const html = await res.text();
    expect(html).toContain("<code>GITHUB_CLIENT_ID</code>");
    expect(html).toContain("<code>GITHUB_CLIENT_SECRET</code>");
    expect(bare.fake.unexpected).toEqual([]);
  });
});
