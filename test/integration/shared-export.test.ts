import { CDKTF_OUT_DIR } from "../../src/engines/cdktf.js";
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { CommitExports } from "../../src/git/commit-exports.js";
import { RepoMirrors } from "../../src/git/repo-mirror.js";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

jest.setTimeout(240_000);

let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo, "Codertocat", 700);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** plangate_commit_exports_total (or another counter) from /metrics. */
async function exportsMade(metric = "plangate_commit_exports_total"): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${metric} `));
  return Number(line?.split(" ")[1] ?? NaN);
}

/** The exports on disk: a group's goes once it is done, and the repository's last is kept (to derive the next one from). */
const exportDirs = () => readdirSync(path.join(h.settings.dataDir, "exports")).map((name) => (name.startsWith(".kept-") ? ".kept-*" : name));

const runsOf = async (sha: string) =>
  (await h.db.pool.query<{ project: string; status: string; output: string; summary: { add: number } | null }>("select project, status, output, summary from runs where sha = $1 order by project", [sha])).rows;

/** Every entry under `dir` (itself included) with its owner and write bits. */
function walk(dir: string): { path: string; uid: number; writable: number }[] {
  const stat = lstatSync(dir);
  const here = { path: dir, uid: stat.uid, writable: stat.isSymbolicLink() ? 0 : stat.mode & 0o222 };
  if (!stat.isDirectory()) return [here];
  return [here, ...readdirSync(dir).flatMap((name) => walk(path.join(dir, name)))];
}

describe("one export of the commit per plan group, shared read-only", () => {
  engineTest("the export is root's and has no write bit anywhere, even where a mount does not cover it", async () => {
    expect(process.getuid?.()).toBe(0); // plangate drops to nobody only when it runs as root, as the tests do
    const sha = repo.commit({ "a/main.tf": "# a\n", "a/deep/er/x.txt": "x", "tool.sh": "#!/bin/sh\n", "link": { symlink: "a/main.tf" } }, "export-modes");
    const scratch = mkdtempSync(path.join(os.tmpdir(), "plangate-export-modes-"));
    const mirrors = new RepoMirrors(path.join(scratch, "mirrors"), `file://${h.fake.gitRoot}`);
    const exports = new CommitExports(path.join(scratch, "exports"), mirrors, undefined, [CDKTF_OUT_DIR]);
    const made = await exports.acquire("modes-1", { owner: "Codertocat", name: "Hello-World" }, sha, async () => "unused");
    const entries = walk(made.tree);
    expect(entries.map((e) => path.relative(made.tree, e.path)).sort()).toEqual(["", "a", "a/deep", "a/deep/er", "a/deep/er/x.txt", "a/main.tf", ".plangate-cdktf.out", "link", "README.md", "tool.sh"].sort());
    expect(entries.filter((e) => e.uid !== 0 || e.writable !== 0)).toEqual([]);
    made.release();
    await exports.discard("modes-1");
    rmSync(scratch, { recursive: true, force: true });
  });

  engineTest("a PR touching three projects exports its commit once; each project reads local modules and shared files from it; the group's export is gone afterwards, kept as the repository's last", async () => {
    const before = await exportsMade();
    const files: Record<string, string> = {
      "modules/tagged/main.tf": 'variable "name" {}\noutput "value" {\n  value = "${var.name}-${trimspace(file("${path.module}/../../shared/suffix.txt"))}"\n}\n',
      "shared/suffix.txt": "shared-suffix\n",
    };
    for (const env of ["dev", "stage", "prod"]) {
      files[`envs/${env}/main.tf`] = `module "tagged" {\n  source = "../../modules/tagged"\n  name   = "${env}"\n}\nresource "terraform_data" "${env}" {\n  input = module.tagged.value\n}\n`;
    }
    const pr = await prs.open(files, Object.keys(files));

    expect(prs.check("plangate/plan", pr.sha)?.conclusion).toBe("success");
    const body = h.fake.commentsOn(prs.full, pr.number).at(-1)!.body;
    for (const env of ["dev", "stage", "prod"]) {
      expect(body).toContain(`| \`envs/${env}\` | \`default\` | ✅ planned | 1 | 0 | 0 | 0 |`);
      expect(body).toContain(`+ input = "${env}-shared-suffix"`);
    }
    expect(await exportsMade()).toBe(before + 1);
    expect(exportDirs()).toEqual([".kept-*"]);
    expect(readdirSync(path.join(h.settings.dataDir, "runs"))).toEqual([]);
  });

  engineTest("a push is planned over an export derived from the PR's previous one: the changed module and file are read, nothing stale", async () => {
    const files: Record<string, string> = {
      "modules/named/main.tf": 'variable "env" {}\noutput "value" {\n  value = "${var.env}-${trimspace(file("${path.module}/../../shared/name.txt"))}"\n}\n',
      "shared/name.txt": "first\n",
    };
    for (const env of ["one", "two"]) files[`stacks/${env}/main.tf`] = `module "named" {\n  source = "../../modules/named"\n  env    = "${env}"\n}\nresource "terraform_data" "${env}" {\n  input = module.named.value\n}\n`;
    const pr = await prs.open(files, Object.keys(files));
    expect(h.fake.commentsOn(prs.full, pr.number).at(-1)!.body).toContain('+ input = "one-first"');
    const [made, derived] = [await exportsMade(), await exportsMade("plangate_commit_exports_derived_total")];

    // The push changes the module and a file it reads, removes one project and adds another.
    const pushed = await prs.push(
      pr,
      { "modules/named/main.tf": files["modules/named/main.tf"]!.replace('"${var.env}-', '"${var.env}--'), "shared/name.txt": "second\n", "stacks/two/main.tf": null, "stacks/three/main.tf": files["stacks/one/main.tf"]!.replaceAll("one", "three") },
      ["modules/named/main.tf", "shared/name.txt", "stacks/two/main.tf", "stacks/three/main.tf"],
    );
    expect(prs.check("plangate/plan", pushed.sha)?.conclusion).toBe("success");
    const body = h.fake.commentsOn(prs.full, pr.number).at(-1)!.body;
    expect(body).toContain('+ input = "one--second"');
    expect(body).toContain('+ input = "three--second"');
    expect(body).not.toContain("-first");
    expect(await exportsMade()).toBe(made + 1);
    expect(await exportsMade("plangate_commit_exports_derived_total")).toBe(derived + 1);
    expect(exportDirs()).toEqual([".kept-*"]);
  });

  engineTest("a project's code cannot write into the shared tree or another project's folder; the other project's plan is unaffected", async () => {
    // A cdktf program runs its app (PR code) in the sandbox: here it tries to write everywhere it should not.
    const hostile = [
      "for f in ../b-victim/main.tf ../b-victim/injected.tf ../injected.tf ../modules/m/main.tf own.txt; do",
      '  if echo \'resource "terraform_data" "injected" {}\' > "$f" 2>/dev/null; then echo "WROTE $f"; else echo "REFUSED $f"; fi',
      "done",
      'if rm -rf ../b-victim 2>/dev/null && [ ! -e ../b-victim ]; then echo "REMOVED ../b-victim"; else echo "REFUSED rm ../b-victim"; fi',
      'if mkdir ../b-victim/.terraform 2>/dev/null; then echo "WROTE ../b-victim/.terraform"; else echo "REFUSED ../b-victim/.terraform"; fi',
      "exit 1",
    ].join("\n");
    const files: Record<string, string> = {
      "a-hostile/cdktf.json": JSON.stringify({ language: "typescript", app: "sh hostile.sh" }),
      "a-hostile/hostile.sh": hostile,
      "b-victim/main.tf": 'module "m" {\n  source = "../modules/m"\n}\nresource "terraform_data" "victim" {\n  input = module.m.value\n}\n',
      "modules/m/main.tf": 'output "value" {\n  value = "from-module"\n}\n',
    };
    const pr = await prs.open(files, Object.keys(files));

    const runs = await runsOf(pr.sha);
    const attacker = runs.find((r) => r.project === "a-hostile")!;
    expect(attacker.status).toBe("failed");
    for (const target of ["../b-victim/main.tf", "../b-victim/injected.tf", "../injected.tf", "../modules/m/main.tf", "rm ../b-victim", "../b-victim/.terraform"]) {
      expect(attacker.output).toContain(`REFUSED ${target}`);
    }
    expect(attacker.output).toContain("WROTE own.txt"); // its own folder is a private writable copy
    expect(attacker.output).not.toMatch(/WROTE \.\.|REMOVED/);

    const victim = runs.find((r) => r.project === "b-victim")!;
    expect(victim).toMatchObject({ status: "succeeded", summary: expect.objectContaining({ add: 1 }) });
    const body = h.fake.commentsOn(prs.full, pr.number).at(-1)!.body;
    expect(body).toContain("| `b-victim` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");
    expect(body).toContain('+ input = "from-module"');
    expect(body).not.toContain("terraform_data.injected");
    expect(existsSync(path.join(h.settings.dataDir, "exports"))).toBe(true);
    expect(exportDirs()).toEqual([".kept-*"]);
  });
});
