import { jest } from "@jest/globals";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

/**
 * The hostile PR author has write access and edits `.plangate.yml` in their
 * own pull request to lower the bar. The rules must come from the base branch.
 */
jest.setTimeout(300_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const BASE_CONFIG = `version: 1
projects:
  - name: network
    dir: infra
    approvals: { required: 2 }
defaults:
  approvals: { required: 2 }
policies:
  - deny: create
    addresses: ["terraform_data.forbidden"]
`;
const LOWERED = "version: 1\nprojects:\n  - name: network\n    dir: infra\n    approvals: { required: 0 }\n    apply: both\n";
const resource = (name: string, value: string) => `resource "terraform_data" "${name}" {\n  input = "${value}"\n}\n`;

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo);
  for (const [user, permission] of [["alice", "write"], ["bob", "maintain"], ["reader", "read"], [prs.author, "write"]]) h.fake.permissions.set(`${OWNER}/${NAME}:${user}`, permission!);
  repo.commit({ ".plangate.yml": BASE_CONFIG, "infra/main.tf": resource("r", "v0") });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

describe("rules come from the base branch", () => {
  engineTest("a PR that sets its own approvals to 0 still needs the base's 2; its author's /apply is refused; the comment says the change takes effect once merged", async () => {
    const p = await prs.open({ ".plangate.yml": LOWERED, "infra/main.tf": resource("r", "v1") }, [".plangate.yml", "infra/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 2 more approvals for network" } });
    const comment = prs.comments(p).at(-1)!;
    expect(comment).toContain("This pull request changes plangate's rules in `.plangate.yml` (approvals, apply of network; policies; defaults)");
    expect(comment).toContain("**take effect once merged**");

    await prs.comment(p, "/apply", prs.author);
    expect(prs.comments(p).at(-1)).toContain("The required approvals on");
    expect(prs.check("plangate/apply", p.sha)?.conclusion).toBe("failure");
    expect((await prs.audit(p)).map((a) => a.action)).toContain("apply.denied");
    expect((await prs.audit(p)).map((a) => a.action)).not.toContain("apply.started");
    await prs.close(p);
  });

  engineTest("a PR that drops the base's policies is still judged by them", async () => {
    const p = await prs.open({ ".plangate.yml": LOWERED, "infra/main.tf": resource("r", "v0") + resource("forbidden", "x") }, ["infra/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
    expect(prs.comments(p).at(-1)).toContain("**Policy violated: this project cannot be approved or applied.**");
    expect(prs.comments(p).at(-1)).toContain("policy 1 denies create");
    expect((await prs.audit(p)).map((a) => a.action)).toContain("policy.violated");
    await prs.close(p);
  });

  engineTest("deleting .plangate.yml does not escape the rules: the discovered project is matched by its dir", async () => {
    const p = await prs.open({ ".plangate.yml": null, "infra/main.tf": resource("r", "v2") }, [".plangate.yml", "infra/main.tf"]);
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 2 more approvals for infra" } });
    expect(prs.comments(p).at(-1)).toContain("(.plangate.yml removed)");
    await prs.close(p);
  });

  engineTest("a project the base does not know gets the base's defaults; a PR may tighten its own rules", async () => {
    const config = `${BASE_CONFIG.replace("projects:\n", "projects:\n  - name: extra\n    dir: extra\n")}`.replace("approvals: { required: 2 }\ndefaults", "approvals: { required: 3 }\ndefaults");
    const p = await prs.open({ ".plangate.yml": config, "extra/main.tf": resource("e", "x"), "infra/main.tf": resource("r", "v3") }, ["extra/main.tf", "infra/main.tf"]);
    const approval = prs.check("plangate/approval", p.sha)!;
    expect(approval.status).toBe("in_progress");
    expect(approval.output?.summary).toContain("| `extra` | 0 | 2 | anyone with write access |");
    expect(approval.output?.summary).toContain("| `network` | 0 | 3 | anyone with write access |");
    await prs.close(p);
  });

  engineTest("a merge is judged by the merge commit's first parent, not by the merge commit that holds the PR's file", async () => {
    const p = await prs.open({ ".plangate.yml": LOWERED, "infra/main.tf": resource("r", "merged") }, [".plangate.yml", "infra/main.tf"]);
    await prs.review(p, "alice");
    expect(prs.check("plangate/approval", p.sha)?.status).toBe("in_progress");
    const mergeSha = await prs.merge(p);
    expect(prs.check("plangate/apply", mergeSha)).toMatchObject({ conclusion: "failure", output: { title: "Not applied" } });
    expect(prs.comments(p).at(-1)).toContain("merged without the required approvals");
    expect(prs.comments(p).at(-1)).toContain("(`network` has 1 of 2), so nothing was applied");
    const actions = (await prs.audit(p)).map((a) => a.action);
    expect(actions).toContain("apply.denied");
    expect(actions).not.toContain("apply.started");
    // main now holds the lowered file: put the base's rules back for the next tests.
    repo.commit({ ".plangate.yml": BASE_CONFIG }, "main");
  });
});

describe("approvers need write permission", () => {
  engineTest("an approval from a read-only user does not count; one from a maintainer does", async () => {
    const p = await prs.open({ "infra/main.tf": resource("r", "v4") }, ["infra/main.tf"]);
    await prs.review(p, "reader");
    await prs.review(p, "alice");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for network" } });
    await prs.review(p, "bob");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "completed", conclusion: "success", output: { title: "Approved by @alice, @bob" } });
    // alice loses write: at the next evaluation her approval no longer counts.
    h.fake.permissions.set(`${OWNER}/${NAME}:alice`, "read");
    await prs.review(p, "reader", "COMMENTED");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for network" } });
    h.fake.permissions.set(`${OWNER}/${NAME}:alice`, "write");
    await prs.close(p);
  });
});

describe("/help", () => {
  engineTest("shows the effective rules and where each came from", async () => {
    const p = await prs.open({ ".plangate.yml": LOWERED.replace("required: 0", "required: 4"), "infra/main.tf": resource("r", "v5") }, ["infra/main.tf"]);
    await prs.comment(p, "/help", "someone-outside");
    const help = prs.comments(p).at(-1)!;
    expect(help).toContain("| `network` | `infra` | terraform | `default` | on | on_merge <sub>base</sub> | 4 <sub>pull request</sub> | none <sub>base</sub> |");
    expect(help).toContain("come from `.plangate.yml` on the default branch `main`");
    expect(help).toContain("1 policy evaluated on every plan (1 from the default branch");
    await prs.close(p);
  });
});
