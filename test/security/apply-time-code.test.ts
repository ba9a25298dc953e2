import { jest } from "@jest/globals";
import pg from "pg";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown, liveMarkup } from "../support/markdown.js";
import { PullRequests } from "../support/pull-requests.js";

/**
 * Issue 21 row 7: a provisioner's command runs at apply with the apply's
 * credentials. It must be shown as such to reviewers, and a change to it
 * after the approval must refuse the apply.
 */

jest.setTimeout(240_000);

let h: Harness;
let repo: GitRepo;
let prs: PullRequests;
let schema: string;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_MASK_PATTERNS: "ghp_[A-Za-z0-9]{16,}" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  schema = `tfstate_provisioners_${Date.now()}`;
  h.fake.permissions.set("Codertocat/Hello-World:alice", "write");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo, "Codertocat", 700);
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

const backend = (dir: string) => `terraform {\n  backend "pg" {\n    conn_str    = "${h.db.url}?sslmode=disable"\n    schema_name = "${schema}_${dir}"\n  }\n}\n`;

async function state(dir: string): Promise<string> {
  const client = new pg.Client({ connectionString: h.db.url });
  await client.connect();
  try {
    const { rows } = await client.query(`select data from ${schema}_${dir}.states where name = 'default'`).catch(() => ({ rows: [] as { data: string }[] }));
    return rows[0]?.data ?? "";
  } finally {
    await client.end();
  }
}

describe("provisioners run at apply: shown to the reviewer", () => {
  engineTest("the comment, the check run and the run page show each local-exec command as running at apply, inert", async () => {
    const tf = `${backend("shown")}
variable "region" {
  default = "eu-west-1"
}
resource "terraform_data" "deploy" {
  input = "v1"
  provisioner "local-exec" {
    command     = "echo deployed @octocat ![x](https://evil.example/p.png) \`\`\` <b>hi</b>"
    environment = { STAGE = "prod", TOKEN = "ghp_abcdefghijklmnop0123" }
  }
}
resource "terraform_data" "notify" {
  count = 2
  provisioner "local-exec" {
    command = "curl -X POST https://hooks.example/\${var.region}/\${self.id}"
  }
}
resource "terraform_data" "quiet" {
  input = "no provisioner"
}
`;
    const p = await prs.open({ "shown/main.tf": tf }, ["shown/main.tf"]);

    const body = prs.comments(p).at(-1)!;
    expect(body).toContain("This plan **runs 2 provisioners at apply**");
    expect(body).toContain("**⚠️ Runs at apply** (2 provisioners)");
    expect(body).toContain("# terraform_data.deploy (create)");
    expect(body).toContain('provisioner "local-exec" {');
    expect(body).toContain('  command     = "echo deployed @octocat ![x](https://evil.example/p.png) ``` <b>hi</b>"');
    expect(body).toContain('    STAGE = "prod"');
    expect(body).toContain('    TOKEN = "***"'); // the operator's mask patterns apply to commands as to values
    expect(body).toContain("# terraform_data.notify: terraform_data.notify[0] (create), terraform_data.notify[1] (create)");
    expect(body).toContain("  command = (an expression of var.region, self.id, self, evaluated at apply)");
    expect(body).not.toContain("# terraform_data.quiet");
    expect(body).toContain("applies exactly this change, running the provisioners shown under \"Runs at apply\".");
    // The command's text is shown as code: no mention, image or link comes alive.
    const ours = (live: string) => live.includes(`http://localhost:${h.app.port}/runs/`); // the run details link
    expect(liveMarkup(h.fake.commentsOn("Codertocat/Hello-World", p.number).at(-1)!.body).filter((m) => !ours(m))).toEqual([]);

    const check = prs.check("plangate/plan", p.sha)!;
    expect(check.conclusion).toBe("success");
    expect(check.output?.summary).toContain("**Runs at apply:** 2 provisioners");
    expect(asShown(check.output!.text!)).toContain('  command     = "echo deployed @octocat');
    expect(asShown(check.output!.text!)).toContain("# terraform_data.notify: terraform_data.notify[0] (create)");
    expect(liveMarkup(check.output!.text!).filter((m) => !ours(m))).toEqual([]);

    const html = await (await fetch(check.details_url!.replace("localhost", "127.0.0.1"))).text();
    expect(html).toContain("This plan runs 2 provisioner(s) at apply");
    expect(html).toContain("<h3>Runs at apply (2 provisioner(s))</h3>");
    expect(html).toContain("command     &#x3D; &quot;echo deployed @octocat ![x](https://evil.example/p.png) &#x60;&#x60;&#x60; &lt;b&gt;hi&lt;/b&gt;&quot;");
    expect(html).not.toContain("<b>hi</b>");
    for (const shown of [JSON.stringify(h.fake.commentsOn("Codertocat/Hello-World", p.number)), JSON.stringify(check.output), html]) expect(shown).not.toContain("ghp_abcdefghijklmnop0123");
    await prs.close(p);
  });

  engineTest("a plan without provisioners says nothing of them", async () => {
    const p = await prs.open({ "plain/main.tf": `${backend("plain")}resource "terraform_data" "a" {\n  input = "x"\n}\n` }, ["plain/main.tf"]);
    const body = prs.comments(p).at(-1)!;
    expect(body).not.toContain("Runs at apply");
    expect(body).not.toContain("provisioner");
    expect(prs.check("plangate/plan", p.sha)!.output?.summary).not.toContain("Runs at apply");
    await prs.close(p);
  });
});

describe("provisioners run at apply: fingerprinted", () => {
  engineTest("the base branch changes only the command after the approval: the merge is refused and the command never runs", async () => {
    // The command lives in a local on main; the PR adds the resource that runs it.
    repo.commit({ "deploy/command.tf": 'locals {\n  command = "echo reviewed"\n}\n' }, "main");
    const resource = `${backend("deploy")}resource "terraform_data" "deploy" {\n  input = "v1"\n  provisioner "local-exec" {\n    command = local.command\n  }\n}\n`;
    const p = await prs.open({ "deploy/main.tf": resource }, ["deploy/main.tf"]);
    expect(prs.comments(p).at(-1)).toContain("  command = (an expression of local.command, evaluated at apply)");
    await prs.review(p, "alice");
    expect(prs.check("plangate/approval", p.sha)?.conclusion).toBe("success");

    // main moves on: the same resource, the same planned values, another command.
    repo.commit({ "deploy/command.tf": 'locals {\n  command = "env > /tmp/credentials-leaked"\n}\n' }, "main");
    const mergeSha = await prs.merge(p);

    expect(prs.check("plangate/apply", mergeSha)).toMatchObject({ conclusion: "failure", output: { title: "Not applied" } });
    const denied = prs.comments(p).at(-1)!;
    expect(denied).toContain("The merge commit's plan differs from the plan that was approved. The fingerprints cover every resource change and the project's configuration");
    expect(denied).toContain("Nothing was applied.");
    const actions = (await prs.audit(p)).map((a) => a.action);
    expect(actions).toContain("apply.denied");
    expect(actions).not.toContain("apply.started");
    expect(await state("deploy")).not.toContain("terraform_data");
  });

  engineTest("the same command at the merge applies (the fingerprint is stable across the re-plan)", async () => {
    const resource = `${backend("same")}resource "terraform_data" "deploy" {\n  input = "v1"\n  provisioner "local-exec" {\n    command = "echo reviewed \${self.id}"\n  }\n}\n`;
    const p = await prs.open({ "same/main.tf": resource }, ["same/main.tf"]);
    await prs.review(p, "alice");
    repo.commit({ "README.md": "main moves on elsewhere" }, "main");
    const mergeSha = await prs.merge(p);
    expect(prs.check("plangate/apply", mergeSha)).toMatchObject({ conclusion: "success" });
    expect(await state("same")).toContain("terraform_data");
  });
});
