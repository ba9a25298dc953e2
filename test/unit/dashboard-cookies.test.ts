import type { IncomingMessage } from "node:http";
import { cookieHeader, cookieName, readCookie } from "../../src/web/cookies.js";
import { readSettings, SettingsError } from "../../src/settings/settings.js";

describe("dashboard cookies", () => {
  test("are HttpOnly and SameSite=Lax, and Secure only when asked (a https public URL)", () => {
    expect(cookieHeader("s", "v", { path: "/", maxAge: 60, secure: false })).toBe("s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
    expect(cookieHeader("s", "v", { path: "/", maxAge: 60, secure: true })).toBe("s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
  });

  test("are read by name; a name sent twice (a planted cookie beside ours) reads as none, whichever comes first", () => {
    const req = { headers: { cookie: "a=1; plangate_session=abc; a=2; junk; __Host-s=x" } } as IncomingMessage;
    expect(readCookie(req, "plangate_session")).toBe("abc");
    expect(readCookie(req, "a")).toBeUndefined();
    expect(readCookie(req, "missing")).toBeUndefined();
    expect(readCookie(req, "__Host-s")).toBe("x");
    expect(readCookie(req, "s")).toBeUndefined();
  });

  test("are named __Host- over https only (a plain-http server cannot set the Secure cookie the prefix needs)", () => {
    expect(cookieName("plangate_session", true)).toBe("__Host-plangate_session");
    expect(cookieName("plangate_session", false)).toBe("plangate_session");
  });
});

describe("dashboard settings", () => {
  test("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET are read together", () => {
    expect(readSettings({ GITHUB_CLIENT_ID: "Iv1.abc", GITHUB_CLIENT_SECRET: "0123456789abcdef0123" }).oauthClient).toEqual({ id: "Iv1.abc", secret: "0123456789abcdef0123" });
    expect(readSettings({}).oauthClient).toBeUndefined();
    expect(() => readSettings({ GITHUB_CLIENT_ID: "Iv1.abc" })).toThrow(SettingsError);
    expect(() => readSettings({ GITHUB_CLIENT_SECRET: "0123456789abcdef0123" })).toThrow(/GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET go together/);
    expect(() => readSettings({ GITHUB_CLIENT_ID: "Iv1.abc", GITHUB_CLIENT_SECRET: "short" })).toThrow(/^GITHUB_CLIENT_SECRET must be the App's client secret$/);
  });
});
