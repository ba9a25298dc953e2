import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { engineTest, toolTest } from "../support/app-harness.js";
import { createTestDatabase } from "../support/database.js";

const run = promisify(execFile);

async function plangate(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  try {
    const { stdout, stderr } = await run("node", ["bin/plangate.js", ...args], { env: clean, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("plangate CLI", () => {
  test("migrate without DATABASE_URL runs on an embedded PostgreSQL under the data dir", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "plangate-cli-"));
    chmodSync(dataDir, 0o755);
    const first = await plangate(["migrate"], { DATABASE_URL: undefined, PLANGATE_DATA_DIR: dataDir });
    expect(first.stderr).toBe("");
    // Every migration of the package, in order.
    const all = readdirSync("migrations").filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
    expect(all.slice(0, 2)).toEqual(["001_initial.sql", "002_approvals_locks_applies.sql"]);
    expect(first).toMatchObject({ code: 0, stdout: `applied: ${all.join(", ")}\n` });
    const again = await plangate(["migrate"], { DATABASE_URL: undefined, PLANGATE_DATA_DIR: dataDir });
    expect(again).toMatchObject({ code: 0, stdout: "database is up to date\n" });
  });

  toolTest(process.getuid?.() === 0, "running as root", "as root, an embedded PostgreSQL its postgres user cannot reach gets one line saying what to do, not initdb's EACCES", async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), "plangate-home-")); // mode 700, like a home directory
    const result = await plangate(["migrate"], { DATABASE_URL: undefined, PLANGATE_DATA_DIR: path.join(home, "data") });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(`cannot reach its data directory under ${home}: set DATABASE_URL, run plangate as a non-root user, or install and set PLANGATE_DATA_DIR in directories other users can enter`);
  });

  test("a bad setting stops start with a message naming it", async () => {
    const result = await plangate(["start"], { PLANGATE_WORKERS: "lots" });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('plangate: invalid setting: PLANGATE_WORKERS must be a whole number (got "lots")\n');
  });

  test("an allowlist that would pass plangate's own settings stops start", async () => {
    const result = await plangate(["start"], { PLANGATE_ENV_ALLOW: "AWS_*,*" });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("invalid setting: PLANGATE_ENV_ALLOW refused: \"*\" would pass plangate's own setting APP_ID into plans");
  });

  test("an explicit engine binary that does not exist stops start", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "plangate-cli-"));
    chmodSync(dataDir, 0o755);
    const db = await createTestDatabase();
    const result = await plangate(["worker"], {
      DATABASE_URL: db.url,
      APP_ID: "1",
      PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
      WEBHOOK_SECRET: "s",
      PLANGATE_DATA_DIR: dataDir,
      PLANGATE_TERRAFORM_BIN: "/nonexistent/terraform",
      LOG_LEVEL: "silent",
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid setting: PLANGATE_TERRAFORM_BIN is "/nonexistent/terraform", which is not an executable file');
    await db.drop();
  });

  test("an unknown command prints the usage", async () => {
    const result = await plangate(["frobnicate"], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
    expect(result.stderr).toContain("audit verify");
  });
});

describe("plangate plan DIR", () => {
  engineTest("prints the comment a PR would get, and exits 1 when the plan fails", async () => {
    const { mkdirSync, writeFileSync } = await import("node:fs");
    const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-local-src-"));
    mkdirSync(path.join(dir, "stack"));
    mkdirSync(path.join(dir, "modules", "m"), { recursive: true });
    writeFileSync(path.join(dir, "stack", "main.tf"), 'module "m" {\n  source = "../modules/m"\n}\n');
    writeFileSync(path.join(dir, "modules", "m", "main.tf"), 'resource "terraform_data" "local" {\n  input = "from-cli"\n}\n');
    const { execFileSync } = await import("node:child_process");
    execFileSync("git", ["init", "-q", dir]);
    const ok = await plangate(["plan", path.join(dir, "stack")], { PLANGATE_DATA_DIR: dir, PLANGATE_SANDBOX: "bwrap" });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("| `stack` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");
    expect(ok.stdout).toContain('+ input = "from-cli"');
    // A local plan gets no identity from plangate's issuer, and says so.
    expect(ok.stdout).toContain("No credentials were issued: a local plan gets no cloud identity from plangate");

    writeFileSync(path.join(dir, "stack", "main.tf"), 'resource "terraform_data" {\n');
    const bad = await plangate(["plan", path.join(dir, "stack")], { PLANGATE_DATA_DIR: dir, PLANGATE_SANDBOX: "bwrap" });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("❌ failed");
    expect(bad.stdout).toContain("terraform init failed");
  });
});
