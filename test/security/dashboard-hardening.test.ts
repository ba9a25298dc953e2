import { jest } from "@jest/globals";
import { appendAuditEvent } from "../../src/audit/audit-log.js";
import { verifyAuditChain } from "../../src/audit/verify.js";
import { inTransaction } from "../../src/db/pool.js";
import { startHarness, type Harness } from "../support/app-harness.js";

// The attackers: any GitHub account that can log in (reloading /audit, reading what it shows), a sibling host or
// plain-http page planting a cookie of the session's name, and a user whose access to a repository was taken away.
jest.setTimeout(120_000);

const A = "Codertocat/Hello-World";
const B = "Codertocat/Secret-Plans";
const PUBLIC_URL = "https://plangate.example";
const CLIENT = { GITHUB_CLIENT_ID: "Iv1.plangatetest", GITHUB_CLIENT_SECRET: "test-client-secret-0123456789abcdef" };

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ ...CLIENT, PLANGATE_WORKERS: "0", PLANGATE_PUBLIC_URL: PUBLIC_URL });
  h.fake.oauthApp = { clientId: CLIENT.GITHUB_CLIENT_ID, clientSecret: CLIENT.GITHUB_CLIENT_SECRET };
  h.fake.userRepos.set("alice", [{ full_name: A, permissions: { admin: false, push: true, pull: true } }]);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** This server's address for a public-URL address (the browser would reach it through the https front). */
const local = (url: string) => url.replace(PUBLIC_URL, h.url);

/** Logs `login` in through the fake GitHub's OAuth pages the way a browser would; returns the Set-Cookie values seen. */
async function login(who: string): Promise<{ stateCookie: string; sessionCookie: string }> {
  const start = await fetch(`${h.url}/login`, { redirect: "manual" });
  const stateCookie = start.headers.get("set-cookie")!;
  h.fake.oauthUser = who;
  const back = await fetch(start.headers.get("location")!, { redirect: "manual" });
  const done = await fetch(local(back.headers.get("location")!), { redirect: "manual", headers: { cookie: stateCookie.split(";")[0]! } });
  expect(done.status).toBe(303);
  return { stateCookie, sessionCookie: done.headers.getSetCookie().find((c) => c.includes("plangate_session="))! };
}

const get = (pathname: string, cookie: string) => fetch(`${h.url}${pathname}`, { headers: { cookie } });

async function audit(repo: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await inTransaction(h.db.pool, (tx) => appendAuditEvent(tx, { action: "lock.acquired", actor: "someone", repo, pullNumber: i + 1, project: `p${i}`, workspace: "default" }));
}

describe("dashboard sessions", () => {
  test("over https the cookies are __Host- (Secure, Path=/, no Domain); an unprefixed one, or two of the name, is no session", async () => {
    const { stateCookie, sessionCookie } = await login("alice");
    expect(stateCookie).toMatch(/^__Host-plangate_oauth_state=[\w-]{43}; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/);
    expect(sessionCookie).toMatch(/^__Host-plangate_session=[\w-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Lax; Secure$/);
    const value = sessionCookie.split(";")[0]!.split("=")[1]!;
    expect((await get("/", `__Host-plangate_session=${value}`)).status).toBe(200);
    // A cookie another host of the site, or a plain-http page, could set: not this server's session.
    expect((await get("/", `plangate_session=${value}`)).status).toBe(401);
    // Two of the name, whichever comes first: ambiguous, so neither counts.
    expect((await get("/", `__Host-plangate_session=${value}; __Host-plangate_session=planted`)).status).toBe(401);
    expect((await get("/", `__Host-plangate_session=planted; __Host-plangate_session=${value}`)).status).toBe(401);
  });

  test("a session's repositories are asked of GitHub again after five minutes: access taken away is gone from the dashboard", async () => {
    const { sessionCookie } = await login("alice");
    const cookie = sessionCookie.split(";")[0]!;
    const asked = () => h.fake.requestsTo("GET", /^\/user\/installations\?/).length;
    expect(await (await get("/", cookie)).text()).toContain(A);
    h.fake.userRepos.set("alice", []); // an admin takes alice off the repository
    const before = asked();
    // Within five minutes of the last answer the session's list is used as it is, without asking GitHub.
    expect(await (await get("/", cookie)).text()).toContain(A);
    expect(asked()).toBe(before);
    // Five minutes on (the session's last answer made older, as time would): GitHub is asked again, once.
    await h.db.pool.query("update dashboard_sessions set repos_checked_at = now() - interval '6 minutes'");
    const page = await get("/", cookie);
    expect(page.status).toBe(200);
    expect(await page.text()).not.toContain(A);
    expect(asked()).toBe(before + 1);
    expect(await (await get("/", cookie)).text()).not.toContain(A);
    expect(asked()).toBe(before + 1);
    h.fake.userRepos.set("alice", [{ full_name: A, permissions: { admin: false, push: true, pull: true } }]);
  });

  test("every dashboard page forbids framing, scripts, sniffing and referrers", async () => {
    const cookie = (await login("alice")).sessionCookie.split(";")[0]!;
    const pages = [await fetch(`${h.url}/`), ...(await Promise.all(["/", "/locks", "/audit", "/drift"].map((p) => get(p, cookie))))];
    expect(pages.map((p) => p.status)).toEqual([401, 200, 200, 200, 200]);
    for (const page of pages) {
      const csp = page.headers.get("content-security-policy")!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("script-src");
      expect(page.headers.get("x-frame-options")).toBe("DENY");
      expect(page.headers.get("referrer-policy")).toBe("no-referrer");
      expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });
});

describe("/audit", () => {
  test("shows counts of the user's repositories only, and verifies each event once, not the whole chain on every load", async () => {
    await audit(B, 30);
    await audit(A, 3);
    await audit(B, 7);
    const cookie = (await login("alice")).sessionCookie.split(";")[0]!;
    const { rows: ids } = await h.db.pool.query<{ id: string }>("select id from audit_events order by id");
    const total = ids.length;
    expect(total).toBeGreaterThanOrEqual(40);

    const first = await (await get("/audit", cookie)).text();
    expect(first).toMatch(/Hash chain verified: all 3 events of your repositories link up/);
    // Nothing of B: not its name, not the chain's length, not the global event ids.
    expect(first).not.toContain("Secret-Plans");
    expect(first).not.toContain(`${total} events`);
    for (const { id } of ids.slice(-10)) expect(first).not.toMatch(new RegExp(`<td>${id}</td>`));
    expect((await h.db.pool.query("select last_id::int from audit_chain_checkpoint")).rows).toEqual([{ last_id: Number(ids.at(-1)!.id) }]);

    // An event already verified is not walked again by a page load: altered behind the trigger's back, the page does not
    // see it (only `plangate audit verify`, the operator's whole-chain walk, does) — the proof the page did not re-walk.
    const old = Number(ids[0]!.id);
    await h.db.pool.query("begin; alter table audit_events disable trigger audit_events_append_only; update audit_events set details = '{\"forged\":true}' where id = $1; alter table audit_events enable trigger audit_events_append_only; commit".replace("$1", String(old)));
    expect(await (await get("/audit", cookie)).text()).toMatch(/Hash chain verified: all 3 events of your repositories link up/);
    expect(await verifyAuditChain(h.db.pool)).toMatchObject({ ok: false, brokenId: old });

    // Events added since are verified by the next load, and a broken one among them is shown.
    await audit(A, 2);
    expect(await (await get("/audit", cookie)).text()).toMatch(/Hash chain verified: all 5 events of your repositories link up/);
    await audit(A, 1);
    const { rows: [newest] } = await h.db.pool.query<{ id: string }>("select max(id) as id from audit_events");
    await h.db.pool.query(`begin; alter table audit_events disable trigger audit_events_append_only; update audit_events set actor = 'mallory' where id = ${newest!.id}; alter table audit_events enable trigger audit_events_append_only; commit`);
    const broken = await (await get("/audit", cookie)).text();
    expect(broken).toContain("Hash chain BROKEN: content does not match its hash. 5 events of your repositories were verified before the break");
  });
});
