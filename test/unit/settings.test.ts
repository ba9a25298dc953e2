import { readSettings, SettingsError } from "../../src/settings/settings.js";
import { parseDuration } from "../../src/settings/duration.js";

const expectError = (env: Record<string, string>, message: RegExp) => {
  expect(() => readSettings(env)).toThrow(SettingsError);
  expect(() => readSettings(env)).toThrow(message);
};

describe("settings", () => {
  test("defaults work for a first start", () => {
    const s = readSettings({}, "/srv/app");
    expect(s).toMatchObject({
      appId: undefined,
      webhookSecret: "development",
      githubApiUrl: "https://api.github.com",
      githubWebUrl: "https://github.com",
      port: 3000,
      dataDir: "/srv/app/.plangate",
      workers: 2,
      sandbox: "auto",
      terraformBin: "terraform",
      tofuBin: "tofu",
      allowForkPrs: false,
      jobTimeoutMs: 30 * 60_000,
      redeliverEveryMs: 5 * 60_000,
    });
  });

  test("GHE_HOST and GHE_PROTOCOL point the API and clones at the server", () => {
    const s = readSettings({ GHE_HOST: "ghe.example.com:8443", GHE_PROTOCOL: "http" });
    expect(s.githubApiUrl).toBe("http://ghe.example.com:8443/api/v3");
    expect(s.githubWebUrl).toBe("http://ghe.example.com:8443");
  });

  test.each([
    [{ PORT: "http" }, /^PORT must be a whole number \(got "http"\)$/],
    [{ PORT: "70000" }, /^PORT must be between 1 and 65535/],
    [{ PLANGATE_WORKERS: "-1" }, /^PLANGATE_WORKERS must be a whole number/],
    [{ PLANGATE_SANDBOX: "docker" }, /^PLANGATE_SANDBOX must be auto, bwrap or none \(got "docker"\)$/],
    [{ PLANGATE_JOB_TIMEOUT: "soon" }, /^PLANGATE_JOB_TIMEOUT must be a duration/],
    [{ PLANGATE_ALLOW_FORK_PRS: "maybe" }, /^PLANGATE_ALLOW_FORK_PRS must be true or false/],
    [{ PLANGATE_ENCRYPTION_KEY: "short" }, /^PLANGATE_ENCRYPTION_KEY must be 32 bytes, as 64 hex digits or base64$/],
    [{ DATABASE_URL: "mysql://x" }, /^DATABASE_URL must be a postgres:\/\/ URL$/],
    [{ GHE_HOST: "https://ghe.example.com" }, /^GHE_HOST must be a host name/],
    [{ GHE_PROTOCOL: "ftp", GHE_HOST: "x" }, /^GHE_PROTOCOL must be http or https/],
    [{ LOG_LEVEL: "loud" }, /^LOG_LEVEL must be trace, debug/],
    [{ WEBHOOK_PROXY_URL: "not a url" }, /^WEBHOOK_PROXY_URL must be a URL/],
    [{ APP_ID: "abc" }, /^APP_ID must be the numeric App ID/],
    [{ APP_ID: "12" }, /^APP_ID is set, so PRIVATE_KEY or PRIVATE_KEY_PATH is required$/],
    [{ PRIVATE_KEY_PATH: "/nonexistent/key.pem" }, /^PRIVATE_KEY_PATH cannot be read/],
    [{ PLANGATE_MASK_PATTERNS: '["ok", "(unclosed"]' }, /^PLANGATE_MASK_PATTERNS holds an invalid regular expression: "\(unclosed"$/],
    [{ PLANGATE_MASK_PATTERNS: "[not json" }, /^PLANGATE_MASK_PATTERNS must be a JSON array of regular expressions, or one regular expression$/],
    [{ PLANGATE_MAX_COMMENTS: "0" }, /^PLANGATE_MAX_COMMENTS must be between 1 and 50 \(got "0"\)$/],
    [{ PLANGATE_TEMPLATES_DIR: "/nonexistent/templates" }, /^PLANGATE_TEMPLATES_DIR must be an existing directory/],
    [{ PLANGATE_PUBLIC_URL: "plangate.example.com" }, /^PLANGATE_PUBLIC_URL must be a URL such as/],
    [{ PLANGATE_WORKER_STALE_AFTER: "never" }, /^PLANGATE_WORKER_STALE_AFTER must be a duration/],
    [{ PLANGATE_REDELIVER_EVERY: "often" }, /^PLANGATE_REDELIVER_EVERY must be a duration/],
    [{ PLANGATE_REDELIVER_EVERY: "1s" }, /^PLANGATE_REDELIVER_EVERY must be between 10s and 24h \(got "1s"\)$/],
  ])("%j is refused with a message naming it", (env, message) => expectError(env as Record<string, string>, message));

  test("notifications need a URL and a signing secret together", () => {
    expect(readSettings({}).notify).toBeUndefined();
    expect(readSettings({ PLANGATE_NOTIFY_URL: "https://hooks.example.com/x", PLANGATE_NOTIFY_SECRET: "0123456789abcdef" }).notify).toEqual({ url: "https://hooks.example.com/x", secret: "0123456789abcdef" });
    expectError({ PLANGATE_NOTIFY_URL: "https://hooks.example.com/x" }, /^PLANGATE_NOTIFY_URL is set, so PLANGATE_NOTIFY_SECRET is required/);
    expectError({ PLANGATE_NOTIFY_URL: "not a url", PLANGATE_NOTIFY_SECRET: "0123456789abcdef" }, /^PLANGATE_NOTIFY_URL must be a URL/);
    expectError({ PLANGATE_NOTIFY_URL: "https://hooks.example.com/x", PLANGATE_NOTIFY_SECRET: "short" }, /^PLANGATE_NOTIFY_SECRET must be at least 16 characters/);
  });

  test("secrets are never echoed in errors", () => {
    expect(() => readSettings({ PLANGATE_ENCRYPTION_KEY: "my-secret-value" })).toThrow(/^((?!my-secret-value).)*$/);
    expect(() => readSettings({ DATABASE_URL: "mysql://user:hunter2@x" })).toThrow(/^((?!hunter2).)*$/);
  });

  test("mask patterns: one regular expression, or a JSON array of them", () => {
    expect(readSettings({ PLANGATE_MASK_PATTERNS: "AKIA[0-9A-Z]{16}" }).maskPatterns.map((p) => p.source)).toEqual(["AKIA[0-9A-Z]{16}"]);
    expect(readSettings({ PLANGATE_MASK_PATTERNS: '["a+b", "ghp_\\\\w+"]' }).maskPatterns.map((p) => p.source)).toEqual(["a+b", "ghp_\\w+"]);
    expect(readSettings({ PLANGATE_PUBLIC_URL: "https://plangate.example.com/" }).publicUrl).toBe("https://plangate.example.com");
  });

  test("the encryption key is accepted as hex or base64", () => {
    expect(readSettings({ PLANGATE_ENCRYPTION_KEY: "ab".repeat(32) }).encryptionKey).toHaveLength(32);
    expect(readSettings({ PLANGATE_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64") }).encryptionKey).toEqual(Buffer.alloc(32, 7));
  });

  test("durations", () => {
    expect(parseDuration("90")).toBe(90_000);
    expect(parseDuration("15m")).toBe(900_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("0")).toBeUndefined();
    expect(parseDuration("-5s")).toBeUndefined();
  });
});
