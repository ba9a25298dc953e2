import { jest } from "@jest/globals";
import { RunLinks } from "../../src/web/run-links.js";
import { closePullRequest, engineTest, queueDrained, startHarness, waitFor, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";

jest.setTimeout(300_000);

const REPO = "Codertocat/Hello-World";
const DB_PASSWORD = "hunter2-very-secret-pw";
const ACCESS_KEY = "AKIAABCDEFGHIJKLMNOP";
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

beforeAll(async () => {
  process.env.TF_VAR_db_password = DB_PASSWORD; // a worker env var a project allowlists
  h = await startHarness({
    PLANGATE_PUBLIC_URL: "https://plangate.example.com",
    PLANGATE_MASK_PATTERNS: '["AKIA[0-9A-Z]{16}"]',
    PLANGATE_TEMPLATES_DIR: "test/fixtures/templates-override",
    PLANGATE_MAX_COMMENTS: "3",
    PLANGATE_ENV_ALLOW: "TF_VAR_db_password",
  });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo, "Codertocat", 400);
});
afterAll(async () => {
  delete process.env.TF_VAR_db_password;
  await h?.close();
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** Opens a PR and waits for its plan (the 3,000-resource one takes longer than open() waits); its check and comments as shown. */
async function openPr(files: Record<string, string>, changed: string[]) {
  const p = await prs.openNoWait(files, changed);
  const check = await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.name === "plangate/plan" && c.head_sha === p.sha && c.status === "completed"), 240_000);
  await queueDrained(h.db);
  return { ...p, check, comments: h.fake.commentsOn(REPO, p.number).map((c) => asShown(c.body)) };
}

/** Pushes to the PR's branch and waits for the new plan; returns the new head. */
async function push(p: Pr, files: Record<string, string>, changed: string[]): Promise<string> {
  const { sha } = await prs.pushNoWait(p, files, changed);
  await waitFor("re-plan", () => h.fake.checkRuns.find((c) => c.name === "plangate/plan" && c.head_sha === sha && c.status === "completed"), 120_000);
  await queueDrained(h.db);
  return sha;
}

describe("plan output", () => {
  engineTest("a secret passed through env, and operator patterns, never appear in comments, checks or stored output", async () => {
    const config = "version: 1\nprojects:\n  - dir: db\n    env: [TF_VAR_db_password]\n";
    repo.commit({ ".plangate.yml": config }, "main"); // env names are rules: the base branch lists them
    const tf = `variable "db_password" {\n  type = string\n}\nresource "terraform_data" "db" {\n  input = { password = var.db_password, key = "${ACCESS_KEY}" }\n  provisioner "local-exec" {\n    command = "true"\n  }\n}\noutput "pw" {\n  value = var.db_password\n}\n`;
    const p = await openPr({ ".plangate.yml": config, "db/main.tf": tf }, ["db/main.tf"]);
    expect(p.check.conclusion).toBe("success");
    const everything = [
      ...p.comments,
      JSON.stringify(h.fake.checkRuns),
      JSON.stringify((await h.db.pool.query("select output, error from runs")).rows),
      JSON.stringify((await h.db.pool.query("select changes from plans")).rows),
      JSON.stringify((await h.db.pool.query("select details from audit_events")).rows),
    ].join("\n");
    expect(everything).not.toContain(DB_PASSWORD);
    expect(everything).not.toContain(ACCESS_KEY);
    expect(p.comments[0]).toContain('password = "***"');
    expect(p.comments[0]).toContain('key = "***"');
    expect(p.comments[0]).toContain('+ pw = "***"');
    repo.commit({ ".plangate.yml": null }, "main");
    await closePullRequest(h, p.number, p.sha);
  });

  engineTest("a plan split over the comment limit: parts within limits, surplus parts deleted on re-plan, the rest linked", async () => {
    const many = (n: number) => `resource "terraform_data" "r" {\n  count = ${n}\n  input = { index = count.index, name = "resource-\${count.index}", tags = { team = "infra", env = "prod" } }\n}\n`;
    const asked = h.fake.requests.length;
    const big = await openPr({ "big/main.tf": many(3000) }, ["big/main.tf"]);
    expect(big.comments).toHaveLength(3);
    // The first part (every project's summary) goes first, then plangate/plan, then the other parts.
    const writes = h.fake.requests.slice(asked).filter((r) => r.method !== "GET");
    const parts = writes.flatMap((r, i) => (r.method === "POST" && r.path.endsWith(`/issues/${big.number}/comments`) ? [i] : []));
    const checks = writes.flatMap((r, i) => (/\/check-runs(\/\d+)?$/.test(r.path) ? [i] : []));
    expect(parts).toHaveLength(3);
    expect(checks.some((i) => i > parts[0]! && i < parts[1]!)).toBe(true);
    big.comments.forEach((c, i) => {
      expect(c.length).toBeLessThanOrEqual(65_536);
      expect(c).toContain(`part ${i + 1} of 3`);
      expect((c.match(/^```/gm) ?? []).length % 2).toBe(0);
      expect((c.match(/<details/g) ?? []).length).toBe((c.match(/<\/details>/g) ?? []).length);
    });
    const shown = big.comments.join("").match(/`terraform_data\.r\[\d+\]`/g)!.length;
    expect(big.comments[2]).toContain(`${3000 - shown} more resource changes are not listed here: they are counted below by type.`);
    expect(big.comments[2]).toContain(`| create | \`terraform_data\` | ${3000 - shown} |`);
    expect(big.comments[2]).toMatch(/The \[full plan\]\(https:\/\/plangate\.example\.com\/runs\/\d+\?expires=\d+&token=[\w-]+\) is on the run page/);
    // operator wording from PLANGATE_TEMPLATES_DIR
    expect(big.comments[2]).toContain("ACME infra: plans by plangate.");

    // the same PR planned again with fewer changes: one part, the other two deleted
    const sha = await push(big, { "big/main.tf": many(3) }, ["big/main.tf"]);
    const after = h.fake.commentsOn(REPO, big.number);
    expect(after).toHaveLength(1);
    expect(after[0]!.body).toContain(sha.slice(0, 7));
    expect(after[0]!.body).not.toContain("part 1 of");
    await closePullRequest(h, big.number, sha);
  });

  engineTest("run page: the check run links it; a valid token shows the whole plan, a bad or expired one 404", async () => {
    const p = await openPr({ "page/main.tf": 'resource "terraform_data" "shown" {\n  input = "<b>not html</b>"\n}\n' }, ["page/main.tf"]);
    const link = p.check.details_url!;
    expect(link).toMatch(/^https:\/\/plangate\.example\.com\/runs\/\d+\?expires=\d+&token=/);
    const local = link.replace("https://plangate.example.com", h.url);
    const ok = await fetch(local);
    expect(ok.status).toBe(200);
    const html = await ok.text();
    expect(html).toContain("<code>terraform_data.shown</code>");
    expect(html).toContain("&lt;b&gt;not html&lt;/b&gt;");
    expect(html).toContain("terraform output");
    expect(html).toContain("Terraform will perform the following actions");

    expect((await fetch(local.replace(/token=[\w-]+/, "token=forged"))).status).toBe(404);
    expect((await fetch(local.replace(/\/runs\/(\d+)/, (_m, id) => `/runs/${Number(id) + 1}`))).status).toBe(404);
    const expired = new RunLinks(h.settings.encryptionKey!, h.url, -1000).url(Number(/\/runs\/(\d+)/.exec(link)![1]));
    expect((await fetch(expired)).status).toBe(404);
    await closePullRequest(h, p.number, p.sha);
  });

  engineTest("policies: a deny fails the project and is listed and audited; require_approvals raises the approvals needed", async () => {
    repo.commit({ "pol/main.tf": 'resource "terraform_data" "db" {\n  input = "x"\n}\n' }, "main");
    const config = "version: 1\nprojects:\n  - dir: pol\npolicies:\n  - deny: destroy\n    resource_types: [terraform_data]\n    addresses: ['*.db']\n  - require_approvals: 2\n    resource_types: [terraform_data]\n";
    const p = await openPr({ ".plangate.yml": config, "pol/main.tf": 'resource "terraform_data" "db" {\n  count = 0\n  input = "x"\n}\nresource "terraform_data" "cache" {\n  input = "y"\n}\n' }, ["pol/main.tf"]);
    // pol had no state yet: nothing is destroyed, so only the approval rule applies
    expect(p.check.conclusion).toBe("success");
    expect(h.fake.checkRuns.filter((c) => c.name === "plangate/approval" && c.head_sha === p.sha).at(-1)?.output?.title).toBe("Needs 2 more approvals for pol");
    await closePullRequest(h, p.number, p.sha);

    const deny = "version: 1\nprojects:\n  - dir: pol\npolicies:\n  - deny: [create]\n    addresses: ['terraform_data.c*']\n";
    const q = await openPr({ ".plangate.yml": deny, "pol/main.tf": 'resource "terraform_data" "cache" {\n  input = "y"\n}\n' }, ["pol/main.tf"]);
    expect(q.check.conclusion).toBe("failure");
    expect(q.check.output?.summary).toContain("policy 1 denies create of addresses terraform_data.c*: `terraform_data.cache`");
    expect(q.comments[0]).toContain("| `pol` | `default` | ❌ policy | 1 | 0 | 0 | 0 |");
    expect(q.comments[0]).toContain("**Policy violated: this project cannot be approved or applied.**");
    expect(q.comments[0]).toContain("`terraform_data.cache`");
    const audit = (await h.db.pool.query("select action, details from audit_events where sha = $1 and action = 'policy.violated'", [q.sha])).rows;
    expect(audit).toHaveLength(1);
    expect(audit[0].details.violations[0].addresses).toEqual(["terraform_data.cache"]);
    expect(h.fake.checkRuns.filter((c) => c.name === "plangate/approval" && c.head_sha === q.sha).at(-1)?.output?.title).toBe("Plan failed: nothing to approve");
    await closePullRequest(h, q.number, q.sha);
  });

  engineTest("labels follow the latest plan", async () => {
    const p = await openPr({ "lab/main.tf": 'resource "terraform_data" "a" {\n  input = "1"\n}\n' }, ["lab/main.tf"]);
    expect(h.fake.issueLabels.get(`${REPO}#${p.number}`)).toEqual(["plangate:changes"]);
    expect(h.fake.labels.has("plangate:changes")).toBe(true); // created by GitHub on first use
    const sha = await push(p, { "lab/main.tf": "" }, ["lab/main.tf"]);
    expect(h.fake.issueLabels.get(`${REPO}#${p.number}`)).toEqual(["plangate:no-changes"]);
    await closePullRequest(h, p.number, sha);
  });
});
