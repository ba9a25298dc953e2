import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

/**
 * The package as a user gets it: `npm pack` of a clean copy of the sources
 * (no dist/: prepack builds it), installed into a project of its own, then
 * `npx plangate`. npm takes what it can from its cache (--prefer-offline).
 */

const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
const work = mkdtempSync(path.join(os.tmpdir(), "plangate-release-"));
const project = path.join(work, "project");
const database = `plangate_release_${randomBytes(6).toString("hex")}`;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function databaseUrl(): string {
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${database}`;
  return url.toString();
}

async function npx(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run("npx", ["--no-install", "plangate", ...args], { cwd: project, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  // A clean clone's files (tracked, or new and not ignored), with the dependencies linked in for the build.
  const sources = path.join(work, "sources");
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { encoding: "utf8" }).split("\0").filter(Boolean);
  for (const file of files) {
    try {
      cpSync(file, path.join(sources, file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error; // deleted, not yet committed
    }
  }
  symlinkSync(path.resolve("node_modules"), path.join(sources, "node_modules"));
  const tarballs = path.join(work, "tarballs");
  mkdirSync(tarballs);
  await run("npm", ["pack", "--pack-destination", tarballs], { cwd: sources, maxBuffer: 16 * 1024 * 1024 });

  mkdirSync(project);
  writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "plangate-release-check", version: "1.0.0", private: true }));
  const [tarball] = readdirSync(tarballs);
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", path.join(tarballs, tarball!)], { cwd: project, maxBuffer: 16 * 1024 * 1024 });
  await admin(`create database ${database}`);
}, 600_000);

afterAll(async () => {
  await admin(`drop database if exists ${database} with (force)`);
  rmSync(work, { recursive: true, force: true });
});

describe("the packed release", () => {
  test("is named for package.json's version and ships what plangate reads at run time", () => {
    const installed = path.join(project, "node_modules", "plangate");
    expect(JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8"))).toMatchObject({ name: "plangate", version });
    const shipped = (dir: string) => readdirSync(path.join(installed, dir)).sort();
    expect(shipped("migrations")).toEqual(readdirSync("migrations").sort());
    expect(shipped("templates")).toEqual(readdirSync("templates").sort());
    expect(shipped(".")).toEqual(expect.arrayContaining(["CHANGELOG.md", "app.yml", "bin", "dist", "plangate.schema.json"]));
    expect(shipped(".")).not.toContain("src");
    expect(shipped(".")).not.toContain("test");
  });

  test("npx plangate --version prints it", async () => {
    expect(await npx(["--version"])).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
  });

  test("npx plangate migrate creates the tables of DESIGN.md in a fresh database", async () => {
    const result = await npx(["migrate"], { DATABASE_URL: databaseUrl() });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^applied: 001_initial\.sql, /);
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    const { rows } = await client.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = 'public'");
    await client.end();
    expect(rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(["audit_events", "webhook_deliveries", "runs", "plans", "locks"]));
    expect(await npx(["migrate"], { DATABASE_URL: databaseUrl() })).toMatchObject({ code: 0, stdout: "database is up to date\n" });
  });
});
