import { statSync, mkdtempSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import pg from "pg";
import { pino } from "pino";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { startPlangate } from "../../src/main.js";
import { readSettings, SettingsError } from "../../src/settings/settings.js";
import { startHarness } from "../support/app-harness.js";

jest.setTimeout(180_000);

describe("an allowlist that would pass plangate's own settings stops the process at start", () => {
  test.each([
    ["*", "APP_ID"],
    ["PLANGATE_*", "PLANGATE_*"],
    ["DATABASE_URL", "DATABASE_URL"],
    ["AWS_*,WEBHOOK_*", "WEBHOOK_SECRET"],
    ["G*", "GHE_*"],
    ["PRIVATE_KEY_PATH", "PRIVATE_KEY*"],
  ])("PLANGATE_ENV_ALLOW=%s names %s", (allow, own) => {
    for (const variable of ["PLANGATE_ENV_ALLOW", "PLANGATE_APPLY_ENV_ALLOW"]) {
      expect(() => readSettings({ [variable]: allow })).toThrow(SettingsError);
      expect(() => readSettings({ [variable]: allow })).toThrow(`${variable} refused:`);
      expect(() => readSettings({ [variable]: allow })).toThrow(`plangate's own setting ${own}`);
    }
  });

  test("names and globs that cannot reach them are accepted", () => {
    const s = readSettings({ PLANGATE_ENV_ALLOW: "AWS_REGION, TF_VAR_*", PLANGATE_APPLY_ENV_ALLOW: "AWS_SECRET_ACCESS_KEY" });
    expect(s.envAllow.allows("TF_VAR_region")).toBe(true);
    expect(s.envAllow.allows("AWS_SECRET_ACCESS_KEY")).toBe(false);
    expect(s.applyEnvAllow.allows("AWS_SECRET_ACCESS_KEY")).toBe(true);
  });

  test.each([
    [{ PLANGATE_SANDBOX_EGRESS_ALLOW: "127.0.0.1:http" }, /^PLANGATE_SANDBOX_EGRESS_ALLOW must be a comma list.*has no valid port/],
    [{ PLANGATE_SANDBOX_EGRESS_DENY: "db.internal" }, /needs a port/],
    [{ PLANGATE_SANDBOX_MEMORY: "lots" }, /^PLANGATE_SANDBOX_MEMORY must be a size/],
    [{ PLANGATE_SANDBOX_PIDS: "3" }, /^PLANGATE_SANDBOX_PIDS must be between 16/],
    [{ PLANGATE_SANDBOX_DISK: "1k" }, /^PLANGATE_SANDBOX_DISK must be at least 16m/],
  ])("%j is refused naming the setting", (env, message) => {
    expect(() => readSettings(env)).toThrow(message);
  });

  test("egress entries and caps are parsed", () => {
    const s = readSettings({ PLANGATE_SANDBOX_EGRESS_ALLOW: "127.0.0.1:5432, db.internal:5432, 10.0.0.0/8:443, [fd00::/8]:443", PLANGATE_SANDBOX_MEMORY: "2g", PLANGATE_SANDBOX_PIDS: "256", PLANGATE_SANDBOX_DISK: "512m" });
    expect(s.egressAllow.map((r) => r.text)).toEqual(["127.0.0.1:5432", "db.internal:5432", "10.0.0.0/8:443", "[fd00::/8]:443"]);
    expect([s.sandboxMemoryBytes, s.sandboxPids, s.sandboxDiskBytes]).toEqual([2 * 1024 ** 3, 256, 512 * 1024 ** 2]);
  });
});

describe("keys at rest", () => {
  test("a process whose encryption key differs from the database's refuses to start, saying so", async () => {
    const h = await startHarness();
    try {
      const other = { ...h.settings, encryptionKey: Buffer.alloc(32, 7), workers: 0 };
      const attempt = startPlangate(other, { server: false, worker: false, log: pino({ level: "silent" }) });
      await expect(attempt).rejects.toThrow(SettingsError);
      await expect(startPlangate(other, { server: false, worker: false, log: pino({ level: "silent" }) })).rejects.toThrow(
        "PLANGATE_ENCRYPTION_KEY is not the key this database's plans were sealed with",
      );
    } finally {
      await h.close();
    }
  });

  test("the embedded PostgreSQL gets a random password kept under the data dir, not a fixed one", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-embedded-"));
    chmodSync(dir, 0o755);
    const db = await startEmbeddedPostgres(dir);
    try {
      const url = new URL(db.url);
      expect(decodeURIComponent(url.password)).not.toBe("plangate");
      expect(decodeURIComponent(url.password).length).toBeGreaterThanOrEqual(24);
      expect(statSync(path.join(dir, "postgres.password")).mode & 0o777).toBe(0o600);
      const guessed = new pg.Client({ connectionString: db.url.replace(url.password, "plangate") });
      await expect(guessed.connect()).rejects.toThrow(/password authentication failed/);
      const real = new pg.Client({ connectionString: db.url });
      await real.connect();
      await real.end();
    } finally {
      await db.stop();
    }
  });
});
