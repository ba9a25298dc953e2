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

  test("--version and -v print package.json's version", async () => {
    const { version } = JSON.parse((await import("node:fs")).readFileSync("package.json", "utf8")) as { version: string };
    for (const flag of ["--version", "-v"]) expect(await plangate([flag], {})).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
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

  engineTest("judges the plan by the repository's .plangate.yml policies, and exits 1 when a deny matches", async () => {
    const { mkdirSync, writeFileSync } = await import("node:fs");
    const { execFileSync } = await import("node:child_process");
    const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-local-policy-"));
    mkdirSync(path.join(dir, "stack"));
    execFileSync("git", ["init", "-q", dir]);
    const tf = (provisioner: boolean) =>
      `resource "terraform_data" "deploy" {\n  input = "v1"\n${provisioner ? '  provisioner "local-exec" {\n    command = "echo deployed"\n  }\n' : ""}}\n`;
    writeFileSync(
      path.join(dir, ".plangate.yml"),
      'version: 1\npolicies:\n  - name: no-local-exec\n    rule: \'"local-exec" in resource.provisioners\'\n    message: "Use a pipeline step \\u001b]0;pwned\\u0007"\n  - name: count-all\n    rule: "true"\n    effect: warn\n',
    );
    writeFileSync(path.join(dir, "stack", "main.tf"), tf(true));
    const denied = await plangate(["plan", path.join(dir, "stack")], { PLANGATE_DATA_DIR: dir, PLANGATE_SANDBOX: "bwrap" });
    expect(denied.code).toBe(1);
    // The comment a pull request would get shows the policy failing the project...
    expect(denied.stdout).toContain("| `stack` | `default` | ❌ policy | 1 | 0 | 0 | 0 |");
    expect(denied.stdout).toContain("`no-local-exec` · deny");
    // ...and every policy's result is printed after it, with the verdict.
    expect(denied.stdout).toContain(`Policies of ${path.join(dir, ".plangate.yml")} for project stack:\n  ✗ DENY     no-local-exec · 1 resource change\n             terraform_data.deploy\n             Use a pipeline step \\u001b]0;pwned\\u0007\n  ! warn     count-all · 1 resource change`);
    expect(denied.stdout).toContain("Denied in stack: a pull request with this plan fails plangate/plan (1 policy).");
    // The message's escape sequence (it would retitle the terminal) is shown, never sent, in the comment too.
    expect(denied.stdout).not.toMatch(/[\u001b\u0007]/);

    writeFileSync(path.join(dir, "stack", "main.tf"), tf(false));
    const passed = await plangate(["plan", path.join(dir, "stack")], { PLANGATE_DATA_DIR: dir, PLANGATE_SANDBOX: "bwrap" });
    expect(passed.code).toBe(0);
    expect(passed.stdout).toContain("  ✓ pass     no-local-exec\n  ! warn     count-all · 1 resource change");
    expect(passed.stdout).toContain("No deny matched.");

    writeFileSync(path.join(dir, ".plangate.yml"), "version: 1\npolicies:\n  - name: typo\n    rule: resource.tpye == 1\n");
    const broken = await plangate(["plan", path.join(dir, "stack")], { PLANGATE_DATA_DIR: dir, PLANGATE_SANDBOX: "bwrap" });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/^plangate plan: .*\.plangate\.yml:4:20: policies\[0\]\.rule: No such key: tpye\n$/);
  });
});

describe("plangate policy test PLAN.json", () => {
  const FIXTURES = path.resolve("test/fixtures/policies");
  const tmp = () => mkdtempSync(path.join(os.tmpdir(), "plangate-policy-test-"));
  const write = async (file: string, text: string) => (await import("node:fs")).writeFileSync(file, text);
  const config = `version: 1
policies:
  - deny: destroy
    resource_types: [aws_db_instance]
  - name: keep-databases
    rule: resource.type == "aws_db_instance" && "delete" in resource.actions
    message: Databases are not destroyed from a pull request.
  - name: tagged
    rule: has(resource.after.tags) && !("tier" in resource.after.tags)
    effect: warn
  - name: prod-only
    rule: "true"
    projects: ["prod-*"]
  - name: by-author
    rule: pull_request.author == "mallory"
`;

  test("prints each policy's result and exits 1 when a deny matches", async () => {
    const dir = tmp();
    await write(path.join(dir, ".plangate.yml"), config);
    const denied = await plangate(["policy", "test", path.join(FIXTURES, "keep-databases", "match.json"), "--config", path.join(dir, ".plangate.yml")], {});
    expect(denied.stderr).toBe("");
    expect(denied.code).toBe(1);
    expect(denied.stdout).toContain(`match.json: 1 resource change (0 to add, 0 to change, 1 to destroy, 0 to replace)
Policies of ${path.join(dir, ".plangate.yml")} for project local:
  ✗ DENY     policy 1 (deny destroy of types aws_db_instance) · 1 resource change
             aws_db_instance.orders
  ✗ DENY     keep-databases · 1 resource change
             aws_db_instance.orders
             Databases are not destroyed from a pull request.
  ✓ pass     tagged
  - skipped  prod-only
             applies only to projects prod-* (give --project NAME to judge as one of them)
  ✓ pass     by-author

Denied: a pull request with this plan fails plangate/plan (2 policies).`);

    const updated = await plangate(["policy", "test", path.join(FIXTURES, "keep-databases", "nomatch.json"), "--config", path.join(dir, ".plangate.yml"), "--project", "prod-db"], {});
    // An update in place: no destroy; but judged as project prod-db, the deny prod-only applies and matches.
    expect(updated.code).toBe(1);
    expect(updated.stdout).toContain("  ✓ pass     keep-databases\n  ✓ pass     tagged\n  ✗ DENY     prod-only · 1 resource change");
    expect(updated.stdout).toContain("Denied: a pull request with this plan fails plangate/plan (1 policy).");
  });

  test("the default config is ./.plangate.yml; --drift makes pull_request null, and a rule that reads it then fails closed", async () => {
    const dir = tmp();
    await write(path.join(dir, ".plangate.yml"), config);
    const plan = path.join(FIXTURES, "keep-databases", "nomatch.json");
    const run = promisify(execFile);
    const onPull = await run("node", [path.resolve("bin/plangate.js"), "policy", "test", plan], { cwd: dir });
    expect(onPull.stdout).toContain("Policies of .plangate.yml for project local:");
    expect(onPull.stdout).toContain("No deny matched.");
    const drift = await plangate(["policy", "test", plan, "--config", path.join(dir, ".plangate.yml"), "--drift"], {});
    expect(drift.code).toBe(1);
    expect(drift.stdout).toContain("  ✗ ERROR    by-author\n             could not be evaluated, so it fails closed: failed on aws_db_instance.orders: No such key: author");
  });

  test("reads a .plangate-policies.yml that holds only policies:", async () => {
    const dir = tmp();
    const file = path.join(dir, ".plangate-policies.yml");
    await write(file, config.replace("version: 1\n", ""));
    const result = await plangate(["policy", "test", path.join(FIXTURES, "big-destroy", "match.json"), "--config", file], {});
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("match.json: 13 resource changes (0 to add, 0 to change, 13 to destroy, 0 to replace)");
    expect(result.stdout).toContain("No deny matched.");
    await write(file, "version: 1\nprojects: []\npolicies: []\n");
    const wrong = await plangate(["policy", "test", path.join(FIXTURES, "big-destroy", "match.json"), "--config", file], {});
    expect(wrong).toMatchObject({ code: 2, stdout: "" });
    expect(wrong.stderr).toBe(`plangate policy test: ${file}:2:1: projects: unknown key "projects"\n`);
  });

  test("bad input exits 2, saying what is wrong: a missing file, a file that is not a plan, a config error at FILE:LINE:COLUMN", async () => {
    const dir = tmp();
    const cfg = path.join(dir, ".plangate.yml");
    await write(cfg, config);
    const plan = path.join(FIXTURES, "keep-databases", "match.json");
    expect(await plangate(["policy", "test", path.join(dir, "nope.json"), "--config", cfg], {})).toMatchObject({ code: 2, stderr: `plangate policy test: cannot read ${path.join(dir, "nope.json")}: ENOENT\n` });
    await write(path.join(dir, "bad.json"), "{ not json");
    expect((await plangate(["policy", "test", path.join(dir, "bad.json"), "--config", cfg], {})).stderr).toMatch(/^plangate policy test: .*bad\.json is not JSON: /);
    await write(path.join(dir, "list.json"), "[]");
    expect(await plangate(["policy", "test", path.join(dir, "list.json"), "--config", cfg], {})).toMatchObject({ code: 2, stderr: expect.stringContaining("is not a plan as `terraform show -json` writes it") });
    await write(cfg, 'version: 1\npolicies:\n  - name: ok\n    rule: resource.address.matches("(?=lookahead)")\n');
    expect(await plangate(["policy", "test", plan, "--config", cfg], {})).toMatchObject({
      code: 2,
      stderr: `plangate policy test: ${cfg}:4:36: policies[0].rule: matches(): error parsing regexp: invalid or unsupported Perl syntax: \`(?=\`\n`,
    });
    expect(await plangate(["policy", "test", plan, "--config", path.join(dir, "none.yml")], {})).toMatchObject({ code: 2, stderr: expect.stringContaining("none.yml: ENOENT") });
    expect(await plangate(["policy", "test"], {})).toMatchObject({ code: 2, stderr: expect.stringContaining("usage: plangate policy test PLAN.json") });
    expect(await plangate(["policy", "test", plan, "--frobnicate"], {})).toMatchObject({ code: 2, stderr: expect.stringContaining("Unknown option '--frobnicate'") });
  });

  test("what a plan or config holds cannot drive the terminal: escape sequences and bidirectional controls are shown, not sent", async () => {
    const dir = tmp();
    const cfg = path.join(dir, ".plangate.yml");
    await write(cfg, 'version: 1\npolicies:\n  - name: all\n    rule: "true"\n    message: "\\e[2J\\e]8;;https://evil.example\\aclick\\e]8;;\\a \\u202e"\n');
    const address = 'terraform_data.x["\u001b[1A\u001b[2K✓ pass     all\rok\u202etxt.exe @octocat **bold**"]';
    await write(path.join(dir, "plan.json"), JSON.stringify({ format_version: "1.2", resource_changes: [{ address, mode: "managed", type: "terraform_data", name: "x", change: { actions: ["create"], before: null, after: {} } }] }));
    const result = await plangate(["policy", "test", path.join(dir, "plan.json"), "--config", cfg], {});
    expect(result.code).toBe(1);
    expect(result.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(result.stdout).toContain('             terraform_data.x["\\u001b[1A\\u001b[2K✓ pass     all\\u000dok\\u202etxt.exe @octocat **bold**"]\n');
    expect(result.stdout).toContain("             \\u001b[2J\\u001b]8;;https://evil.example\\u0007click\\u001b]8;;\\u0007 \\u202e\n");
  });
});
