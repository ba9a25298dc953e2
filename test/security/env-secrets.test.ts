import { jest } from "@jest/globals";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

/**
 * The hostile PR author asks for plangate's own settings and exfiltrates an
 * allowed secret in disguise (base64, reversed, URL-encoded).
 */
jest.setTimeout(300_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
const TOKEN = "plan-token-Zq9/x+y=42";
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const STEAL_OWN = "version: 1\nprojects:\n  - dir: own\n    env: [DATABASE_URL, WEBHOOK_SECRET, PRIVATE_KEY]\n";
const config = `version: 1
projects:
  - dir: own
    env: [DATABASE_URL, WEBHOOK_SECRET, PRIVATE_KEY]
  - dir: notallowed
    env: [TF_VAR_other]
  - dir: leak
    env: [TF_VAR_token]
  - dir: applyonly
    env: [TF_VAR_apply_token]
`;
const leaky = `variable "token" {
  type    = string
  default = "unset"
}
resource "terraform_data" "leak" {
  input = {
    raw      = var.token
    b64      = base64encode(var.token)
    b64later = base64encode("xy\${var.token}")
    reversed = strrev(var.token)
    url      = urlencode(var.token)
  }
}
output "token" {
  value = var.token
}
`;
const applyOnly = 'variable "apply_token" {\n  type    = string\n  default = "unset"\n}\nresource "terraform_data" "a" {\n  input = var.apply_token\n}\n';

beforeAll(async () => {
  process.env.TF_VAR_token = TOKEN;
  process.env.TF_VAR_other = "other-value-123";
  process.env.TF_VAR_apply_token = "apply-only-credential-77";
  h = await startHarness({ PLANGATE_ENV_ALLOW: "TF_VAR_tok*", PLANGATE_APPLY_ENV_ALLOW: "TF_VAR_apply_token" });
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo, "Codertocat", 700);
  // The operator's rules are on main; the env names come from there.
  repo.commit({ ".plangate.yml": config, "README.md": "x" });
});
afterAll(async () => {
  for (const name of ["TF_VAR_token", "TF_VAR_other", "TF_VAR_apply_token"]) delete process.env[name];
  await h?.close();
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

const failureOf = async (sha: string, project: string) =>
  (await h.db.pool.query("select status, error from runs where sha = $1 and project = $2", [sha, project])).rows[0];

describe("secrets", () => {
  engineTest("plangate's own settings are never passed: the project fails naming the variable", async () => {
    const p = await prs.open({ "own/main.tf": 'resource "terraform_data" "x" {\n  input = "x"\n}\n' }, ["own/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
    const run = await failureOf(p.sha, "own");
    expect(run.error.message).toBe("env DATABASE_URL is one of plangate's own settings, which are never passed to a project");
    expect(prs.comments(p).at(-1)).toContain("env DATABASE_URL is one of plangate's own settings");
    const everything = [...prs.comments(p), JSON.stringify(h.fake.checkRuns)].join("\n");
    expect(everything).not.toContain(h.settings.webhookSecret);
    expect(everything).not.toContain(new URL(h.db.url).pathname.slice(1));
    await prs.close(p);
  });

  engineTest("a name PLANGATE_ENV_ALLOW does not allow fails the project with the name and the setting", async () => {
    const p = await prs.open({ "notallowed/main.tf": 'resource "terraform_data" "x" {\n  input = "x"\n}\n' }, ["notallowed/main.tf"]);
    const run = await failureOf(p.sha, "notallowed");
    expect(run.status).toBe("failed");
    expect(run.error.message).toBe("env TF_VAR_other is not allowed: the operator must add it to PLANGATE_ENV_ALLOW (or to PLANGATE_APPLY_ENV_ALLOW for applies only)");
    await prs.close(p);
  });

  engineTest("an allowed value is masked raw, base64 (any alignment), reversed and URL-encoded everywhere it is shown or stored", async () => {
    const p = await prs.open({ "leak/main.tf": leaky }, ["leak/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    const comment = prs.comments(p).join("\n");
    expect(comment).toContain('raw = "***"');
    const stored = [
      comment,
      JSON.stringify(h.fake.checkRuns),
      JSON.stringify((await h.db.pool.query("select output, error from runs where sha = $1", [p.sha])).rows),
      JSON.stringify((await h.db.pool.query("select p.changes from plans p join runs r on r.id = p.run_id where r.sha = $1", [p.sha])).rows),
      JSON.stringify((await h.db.pool.query("select details from audit_events where sha = $1", [p.sha])).rows),
    ].join("\n");
    const forms = [
      TOKEN,
      Buffer.from(TOKEN).toString("base64"),
      Buffer.from(`xy${TOKEN}`).toString("base64").slice(4, -4),
      [...TOKEN].reverse().join(""),
      encodeURIComponent(TOKEN),
      "Zq9/x+y=42",
    ];
    for (const form of forms) expect(stored).not.toContain(form);
    await prs.close(p);
  });

  engineTest("a PR cannot add env names the base does not list; apply-only credentials never reach a plan", async () => {
    const prConfig = config.replace("env: [TF_VAR_apply_token]", "env: [TF_VAR_apply_token, TF_VAR_token]");
    const p = await prs.open({ ".plangate.yml": prConfig, "applyonly/main.tf": applyOnly + leaky }, ["applyonly/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    const comment = prs.comments(p).join("\n");
    expect(comment).toContain('+ input = "unset"'); // TF_VAR_apply_token: allowed for applies only
    expect(comment).toContain('raw = "unset"'); // TF_VAR_token: the base does not list it for this project
    expect(comment).toContain("env of applyonly");
    await prs.close(p);
  });

  engineTest("an apply credential echoed by a failing merge-commit plan is masked in the refusal, the check run and the audit log", async () => {
    h.fake.permissions.set(`${OWNER}/${NAME}:alice`, "write");
    const p = await prs.open({ "applyonly/main.tf": applyOnly }, ["applyonly/main.tf"]);
    await prs.review(p, "alice");
    // After the approval, main gains a precondition whose message prints the credential the merge-commit plan gets.
    const echo = 'resource "terraform_data" "echo" {\n  input = "x"\n  lifecycle {\n    precondition {\n      condition     = var.apply_token == "never"\n      error_message = "the token is ${var.apply_token}"\n    }\n  }\n}\n';
    repo.commit({ "applyonly/echo.tf": echo }, "main");
    const mergeSha = await prs.merge(p);
    const said = prs.comments(p).at(-1)!;
    expect(said).toContain("plangate plans the merge commit afresh before applying, and that plan failed");
    expect(said).toContain("the token is");
    const everywhere = [said, JSON.stringify(prs.check("plangate/apply", mergeSha)), JSON.stringify(await prs.audit(p)), JSON.stringify((await h.db.pool.query("select outcome from run_groups")).rows)].join("\n");
    expect(everywhere).not.toContain("apply-only-credential-77");
    repo.commit({ "applyonly/echo.tf": null }, "main");
  });
});
