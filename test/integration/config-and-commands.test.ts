import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { findBinary } from "../../src/settings/find-binary.js";
import { closePullRequest, engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(180_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
const REPO = `${OWNER}/${NAME}`;
let h: Harness;
let repo: GitRepo;
let pr = 10;

let tofuWrapper: string;

beforeAll(async () => {
  // OpenTofu is not installed here: a wrapper that announces itself and runs terraform shows the tofu engine uses PLANGATE_TOFU_BIN.
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-tofu-"));
  chmodSync(dir, 0o755);
  tofuWrapper = path.join(dir, "tofu");
  writeFileSync(tofuWrapper, `#!/bin/sh\necho "tofu-wrapper: $*" >&2\nexec ${findBinary("terraform") ?? "terraform"} "$@"\n`, { mode: 0o755 });
  h = await startHarness({ PLANGATE_TOFU_BIN: tofuWrapper, PLANGATE_WORKERS: "3" });
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  h.fake.permissions.set(`${REPO}:writer`, "write");
  h.fake.permissions.set(`${REPO}:reader`, "read");
});
afterAll(async () => h?.close());
const open = new Map<number, string>();
afterEach(async () => {
  expect(h.fake.unexpected).toEqual([]);
  // Each test's PRs are closed so their locks do not hold the next test's plans.
  for (const [number, sha] of open) await closePullRequest(h, number, sha);
  open.clear();
});

const resource = (name: string, extra = "") => `resource "terraform_data" "${name}" {\n  input = "${name}"\n}\n${extra}`;
const usesModule = 'module "shared" {\n  source = "../modules/shared"\n}\n';

/** Opens a new PR (its own number) on a branch whose tip is `files` over main, changing `changed`. */
async function openPr(files: Record<string, string | null | { symlink: string }>, changed: string[], options: { headRepo?: string } = {}) {
  const number = ++pr;
  const sha = repo.commit(files, `pr-${number}`);
  h.fake.pullFiles.set(`${REPO}#${number}`, changed);
  h.fake.pulls.set(`${REPO}#${number}`, { headSha: sha, headRepo: options.headRepo });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  if (options.headRepo) payload.pull_request.head.repo = { ...payload.pull_request.head.repo, full_name: options.headRepo };
  const res = await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
  expect(res.status).toBe(200);
  open.set(number, sha);
  return { number, sha };
}

async function comment(number: number, body: string, user = "writer") {
  const payload = examplePayload("issue_comment", "created");
  payload.issue = { ...payload.issue, number, pull_request: { url: `http://x/repos/${REPO}/pulls/${number}` } };
  payload.comment = { ...payload.comment, id: 50_000 + Math.floor(Math.random() * 1e6), body, user: { ...payload.comment.user, login: user, type: "User" } };
  payload.sender = { ...payload.sender, login: user, type: "User" };
  const res = await deliver(h.url, "issue_comment", payload, WEBHOOK_SECRET);
  expect(res.status).toBe(200);
  await queueDrained(h.db);
  return payload.comment.id as number;
}

const planChecks = (sha: string) => h.fake.checkRuns.filter((c) => c.name === "plangate/plan" && c.head_sha === sha);
const completedPlan = (sha: string) => waitFor(`plangate/plan on ${sha}`, () => planChecks(sha).find((c) => c.status === "completed"));
const plannedProjects = async (sha: string) =>
  (await h.db.pool.query("select project from runs where sha = $1 order by project", [sha])).rows.map((r) => r.project);
/** The last comment as GitHub shows it (markdown renders HTML entities as characters). */
const lastComment = (number: number) => asShown(h.fake.commentsOn(REPO, number).at(-1)?.body ?? "");
const audit = async (sha: string) => (await h.db.pool.query("select action, actor, details from audit_events where sha = $1 order by id", [sha])).rows;

// main: three projects, two of them calling modules/shared
beforeAll(() => {
  repo.commit({
    "a/main.tf": resource("a", usesModule),
    "b/main.tf": resource("b", usesModule),
    "c/main.tf": resource("c"),
    "modules/shared/main.tf": resource("shared"),
  });
});

describe("monorepo without a config file", () => {
  engineTest("a PR touching one project plans only that one", async () => {
    const { sha } = await openPr({ "c/main.tf": resource("c", resource("c2")) }, ["c/main.tf"]);
    expect((await completedPlan(sha)).conclusion).toBe("success");
    await queueDrained(h.db);
    expect(await plannedProjects(sha)).toEqual(["c"]);
  });

  engineTest("a PR touching a local module plans the projects that call it, and not the module", async () => {
    const { sha, number } = await openPr({ "modules/shared/main.tf": resource("shared", resource("shared2")) }, ["modules/shared/main.tf"]);
    expect((await completedPlan(sha)).conclusion).toBe("success");
    await queueDrained(h.db);
    expect(await plannedProjects(sha)).toEqual(["a", "b"]);
    const body = lastComment(number);
    expect(body).toContain("| `a` | `default` | ✅ planned | 3 | 0 | 0 | 0 |");
    expect(body).toContain("| `b` | `default` | ✅ planned | 3 | 0 | 0 | 0 |");
    expect(body).toContain("`module.shared.terraform_data.shared2`");
  });

  engineTest("a .plangate.yml with policies but no projects still discovers the projects (and applies its policies)", async () => {
    const config = "version: 1\npolicies:\n  - deny: create\n    addresses: ['terraform_data.forbidden']\n";
    const { sha } = await openPr({ ".plangate.yml": config, "polonly/main.tf": 'resource "terraform_data" "forbidden" {\n  input = "x"\n}\n' }, ["polonly/main.tf"]);
    const check = await completedPlan(sha);
    expect(await plannedProjects(sha)).toEqual(["polonly"]);
    // Discovered, planned, and held to the file's policy (the base has none, so the PR's own policy still counts: it only tightens).
    expect(check).toMatchObject({ conclusion: "failure" });
    expect(check.output?.title).not.toContain("Nothing to plan");
  });

  test("a PR touching no project gets a neutral plangate/plan and plangate/approval (required checks never block it)", async () => {
    const { sha } = await openPr({ "README.md": "docs" }, ["README.md"]);
    const check = await completedPlan(sha);
    expect(check.conclusion).toBe("neutral");
    await waitFor("plangate/approval", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/approval"));
    expect(h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/approval")).toMatchObject({ status: "completed", conclusion: "neutral", output: { title: "Nothing to plan" } });
    expect(await plannedProjects(sha)).toEqual([]);
  });
});

describe(".plangate.yml", () => {
  test("a .plangate.yml too large to read fails plangate/plan saying so, without reading it", async () => {
    // A hostile PR's 9 MiB config: refused by its size before any of it is read into memory.
    const huge = `version: 1\n# ${"x".repeat(9 * 1024 * 1024)}\n`;
    const { sha, number } = await openPr({ ".plangate.yml": huge }, ["c/main.tf"]);
    const check = await completedPlan(sha);
    expect(check.conclusion).toBe("failure");
    expect(check.output?.title).toBe(".plangate.yml is invalid");
    expect(lastComment(number)).toContain(`.plangate.yml is ${huge.length} bytes; plangate reads files of at most 8388608 bytes`);
    expect(await plannedProjects(sha)).toEqual([]);
    await queueDrained(h.db);
    expect((await audit(sha)).map((a) => a.action)).toEqual(["config.invalid"]);
  });

  test("a YAML syntax error fails plangate/plan with the file, line and column", async () => {
    const { sha, number } = await openPr({ ".plangate.yml": "version: 1\nprojects:\n  - dir: [c\n" }, ["c/main.tf"]);
    const check = await completedPlan(sha);
    expect(check.conclusion).toBe("failure");
    expect(check.output?.title).toBe(".plangate.yml is invalid");
    expect(lastComment(number)).toMatch(/`\.plangate\.yml:4:1`: /);
    expect(await plannedProjects(sha)).toEqual([]);
    await queueDrained(h.db);
    expect((await audit(sha)).map((a) => a.action)).toEqual(["config.invalid"]);
  });

  test("schema errors (unknown key, wrong type) name their lines", async () => {
    const { sha, number } = await openPr({ ".plangate.yml": "version: 1\nprojects:\n  - dir: c\n    engin: terraform\n    workspace: [x]\n" }, ["c/main.tf"]);
    expect((await completedPlan(sha)).conclusion).toBe("failure");
    const body = lastComment(number);
    expect(body).toContain('`.plangate.yml:4:5`: projects[0].engin: unknown key "engin"');
    expect(body).toContain("`.plangate.yml:5:16`: projects[0].workspace: Invalid input: expected string, received array");
  });

  test("dir: ../../etc is rejected as a config error", async () => {
    const { sha, number } = await openPr({ ".plangate.yml": "version: 1\nprojects:\n  - dir: ../../etc\n" }, ["c/main.tf"]);
    expect((await completedPlan(sha)).conclusion).toBe("failure");
    expect(lastComment(number)).toContain('`.plangate.yml:3:10`: projects[0].dir: dir must stay inside the repository (no ".." escaping it)');
  });

  engineTest("a dir that is a symlink out of the repository is rejected", async () => {
    const config = "version: 1\nprojects:\n  - name: escape\n    dir: link\n    autoplan: { when_modified: ['**'] }\n";
    const { sha, number } = await openPr({ ".plangate.yml": config, link: { symlink: "/etc" } }, ["link"]);
    expect((await completedPlan(sha)).conclusion).toBe("failure");
    expect(lastComment(number)).toContain('.plangate.yml: dir "link" resolves outside the repository');
    await queueDrained(h.db);
    expect((await audit(sha)).map((a) => a.action)).toEqual(["lock.acquired", "plan.started", "plan.failed", "config.invalid", "approval.changed"]);
  });

  engineTest("autoplan.enabled: false is respected, but the changed project keeps plangate/plan pending; when_modified can reach ../modules", async () => {
    const config = "version: 1\nprojects:\n  - dir: a\n    autoplan: { enabled: false }\n  - name: see\n    dir: c\n    autoplan: { when_modified: ['*.tf', '../modules/**'] }\n";
    const { sha } = await openPr({ ".plangate.yml": config, "modules/shared/extra.tf": resource("x") }, ["a/main.tf", "modules/shared/extra.tf"]);
    await waitFor("plangate/plan reported", () => h.fake.checkRuns.find((c) => c.name === "plangate/plan" && c.head_sha === sha && c.output?.title?.startsWith("Not planned")));
    await queueDrained(h.db);
    // b calls the module too, but with a config file only listed projects exist
    expect(await plannedProjects(sha)).toEqual(["see"]);
    // a changed but is not autoplanned: nothing is neutral or green until it is planned.
    const plan = h.fake.checkRuns.filter((c) => c.name === "plangate/plan" && c.head_sha === sha).at(-1)!;
    expect(plan).toMatchObject({ status: "in_progress", output: { title: "Not planned: comment /plan -p a (+1 projects)" } });
    // b, which the default branch discovers, uses the changed module but this PR's config drops it: it is named too.
    expect(plan.output?.summary).toContain("| `a` | `a` | `default` | comment `/plan -p a` |");
    expect(plan.output?.summary).toContain("| `b` | `b` | `default` | only the default branch knows it");
  });
});

describe("engines and concurrency", () => {
  engineTest("engine: tofu runs PLANGATE_TOFU_BIN in a selected workspace", async () => {
    const config = "version: 1\nprojects:\n  - name: tofu-app\n    dir: c\n    engine: tofu\n    workspace: staging\n";
    const { sha, number } = await openPr({ ".plangate.yml": config, "c/main.tf": resource("c", 'output "ws" {\n  value = terraform.workspace\n}\n') }, ["c/main.tf"]);
    expect((await completedPlan(sha)).conclusion).toBe("success");
    await queueDrained(h.db);
    const { rows } = await h.db.pool.query("select project, workspace, engine, output from runs where sha = $1", [sha]);
    expect(rows.map((r) => [r.project, r.workspace, r.engine])).toEqual([["tofu-app", "staging", "tofu"]]);
    expect(rows[0].output).toContain("tofu-wrapper: -chdir=c init");
    expect(rows[0].output).toContain("tofu-wrapper: -chdir=c plan");
    expect(lastComment(number)).toContain("| `tofu-app` | `staging` | ✅ planned | 1 | 0 | 0 | 0 |");
  });

  engineTest("independent projects plan at the same time across the worker's slots", async () => {
    const many = (name: string) => `resource "terraform_data" "${name}" {\n  count = 1500\n  input = "\${count.index}"\n}\n`;
    const { sha, number } = await openPr({ "c/main.tf": many("c"), "a/main.tf": many("a") }, ["a/main.tf", "c/main.tf"]);
    expect((await completedPlan(sha)).conclusion).toBe("success");
    await queueDrained(h.db);
    const { rows } = await h.db.pool.query("select project, started_at, finished_at from runs where sha = $1 order by project", [sha]);
    expect(rows.map((r) => r.project)).toEqual(["a", "c"]);
    const [a, c] = rows;
    // each started before the other finished: they overlapped
    expect(a.started_at < c.finished_at && c.started_at < a.finished_at).toBe(true);
    // one summary table for both, in part 1 of the split comment
    const body = asShown(h.fake.commentsOn(REPO, number).find((c) => c.body.includes("plangate:plan part=1"))!.body);
    expect(body).toContain("| `a` | `default` | ✅ planned | 1500 | 0 | 0 | 0 |");
    expect(body).toContain("| `c` | `default` | ✅ planned | 1500 | 0 | 0 | 0 |");
  });
});

describe("comment commands", () => {
  engineTest("/plan -p NAME plans only that project, with an eyes reaction and an audit row", async () => {
    const config = "version: 1\nprojects:\n  - name: alpha\n    dir: a\n  - name: charlie\n    dir: c\n";
    const { sha, number } = await openPr({ ".plangate.yml": config, "a/main.tf": resource("a", resource("a3")), "c/main.tf": resource("c", resource("c3")) }, ["a/main.tf", "c/main.tf"]);
    await completedPlan(sha);
    await queueDrained(h.db);
    const before = await plannedProjects(sha);
    expect(before).toEqual(["alpha", "charlie"]);
    const gitRequests = () => h.fake.requests.filter((r) => /\.git\/(info\/refs|git-upload-pack)/.test(r.path)).length;
    const fetchesBefore = gitRequests();
    const commentId = await comment(number, "/plan -p charlie\nplease");
    await waitFor("the command's plan", async () => (await plannedProjects(sha)).length === 3);
    await queueDrained(h.db);
    expect(await plannedProjects(sha)).toEqual(["alpha", "charlie", "charlie"]);
    // The head was fetched for the PR's first plan: the re-plan asks the mirror and fetches nothing.
    expect(gitRequests()).toBe(fetchesBefore);
    expect(h.fake.reactions).toContainEqual({ commentId, content: "eyes" });
    const actions = (await audit(sha)).filter((a) => a.action.startsWith("command."));
    expect(actions).toEqual([{ action: "command.received", actor: "writer", details: expect.objectContaining({ command: "plan", selector: { all: false, project: "charlie" } }) }]);
  });

  test("/plan --bogus gets a usage reply and runs nothing", async () => {
    const { sha, number } = await openPr({ "README.md": "x" }, ["README.md"]);
    await completedPlan(sha);
    const comments = h.fake.commentsOn(REPO, number).length;
    await comment(number, "/plan --bogus");
    expect(h.fake.commentsOn(REPO, number)).toHaveLength(comments + 1);
    expect(lastComment(number)).toContain("`/plan --bogus`: unknown flag --bogus. Nothing was run.");
    expect(lastComment(number)).toContain("| `/plan -p NAME` · `-d DIR` · `-w WORKSPACE` |");
    expect(await plannedProjects(sha)).toEqual([]);
    expect(await audit(sha)).toEqual([]);
  });

  test("/help lists the commands and the effective config, for anyone", async () => {
    const { sha, number } = await openPr({ "README.md": "y" }, ["README.md"]);
    await completedPlan(sha);
    const commentId = await comment(number, "/help", "someone-outside");
    const body = lastComment(number);
    expect(body).toContain("**plangate commands**");
    expect(body).toContain("| `/unlock` |");
    expect(body).toContain("no `.plangate.yml`: discovered");
    expect(body).toContain("| `c` | `c` | terraform | `default` | on | on_merge <sub>built-in</sub> | 1 <sub>built-in</sub> | none <sub>built-in</sub> |");
    expect(body).not.toContain("`modules/shared`");
    expect(h.fake.reactions).toContainEqual({ commentId, content: "eyes" });
  });

  test("/plan from a read-only user is refused and audited", async () => {
    const { sha, number } = await openPr({ "README.md": "z" }, ["README.md"]);
    await completedPlan(sha);
    await comment(number, "/plan --all", "reader");
    expect(lastComment(number)).toBe("@reader `/plan` needs write permission on this repository (yours: read). Nothing was run.\n");
    expect(await plannedProjects(sha)).toEqual([]);
    expect((await audit(sha)).map((a) => [a.action, a.actor, a.details.permission])).toEqual([["command.rejected", "reader", "read"]]);
  });

  test("comments that are not commands, and bot comments, are ignored", async () => {
    const { sha, number } = await openPr({ "README.md": "w" }, ["README.md"]);
    await completedPlan(sha);
    const count = h.fake.commentsOn(REPO, number).length;
    await comment(number, "please /plan this");
    await comment(number, "/planet");
    expect(h.fake.commentsOn(REPO, number)).toHaveLength(count);
  });
});

describe("fork pull requests", () => {
  test("are not planned; the PR is told why, once", async () => {
    const { sha, number } = await openPr({ "c/main.tf": resource("c", resource("fork")) }, ["c/main.tf"], { headRepo: "mallory/Hello-World" });
    await queueDrained(h.db);
    expect(planChecks(sha)).toEqual([]);
    expect(await plannedProjects(sha)).toEqual([]);
    const notices = h.fake.commentsOn(REPO, number);
    expect(notices).toHaveLength(1);
    expect(notices[0]!.body).toContain("plangate does not plan pull requests from forks");
    expect(notices[0]!.body).toContain("`mallory/Hello-World`");
    await comment(number, "/plan");
    expect(await plannedProjects(sha)).toEqual([]);
    expect(h.fake.commentsOn(REPO, number)).toHaveLength(1);
  });
});
