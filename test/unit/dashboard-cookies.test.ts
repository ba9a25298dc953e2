import type { IncomingMessage } from "node:http";
import { cookieHeader, readCookies } from "../../src/web/cookies.js";
import { readSettings, SettingsError } from "../../src/settings/settings.js";

describe("dashboard cookies", () => {
  test("are HttpOnly and SameSite=Lax, and Secure only when asked (a https public URL)", () => {
    expect(cookieHeader("s", "v", { path: "/", maxAge: 60, secure: false })).toBe("s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
    expect(cookieHeader("s", "v", { path: "/", maxAge: 60, secure: true })).toBe("s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
  });

  test("are read by name, the first of a name winning", () => {
    const cookies = readCookies({ headers: { cookie: "a=1; plangate_session=abc; a=2; junk" } } as IncomingMessage);
    expect(cookies.get("plangate_session")).toBe("abc");
    expect(cookies.get("a")).toBe("1");
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
