import { jest } from "@jest/globals";
import type { PolicyConfig } from "../../src/settings/repo-config.js";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";

/**
 * Organisation-wide policies (DESIGN.md section 2): PLANGATE_POLICY_REPO's
 * default branch's .plangate-policies.yml judges every repository's plans,
 * read with the policy repository owner's installation, once per commit; a
 * repository cannot weaken them, and when they cannot be read nothing is
 * planned (fail closed, saying why).
 */
jest.setTimeout(300_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
const POLICY_OWNER = "acme";
const POLICY_INSTALLATION = 777;
const POLICY_FILE = ".plangate-policies.yml";

let h: Harness;
let repo: GitRepo;
let policyRepo: GitRepo;
let prs: PullRequests;

/** The organisation's CEL policy; its owner is a user, not a team (whose team a bare slug names is the planned repository's owner's). */
const ORG_POLICIES = `version: 1
policies:
  - name: no-forbidden-data
    rule: resource.type == "terraform_data" && resource.name.startsWith("forbidden")
    effect: deny
    message: terraform_data named forbidden* is refused organisation-wide.
    owners: { users: [sam] }
`;
/** The organisation's policies with one more deny: `no-PREFIX`, for resources named PREFIX*. */
const withDeny = (prefix: string) => `${ORG_POLICIES}  - name: no-${prefix}\n    rule: resource.name.startsWith("${prefix}")\n    message: ${prefix}* is refused too.\n`;
/** The repository's own config: a project, no policies. */
const REPO_CONFIG = "version: 1\nprojects:\n  - name: infra\n    dir: infra\n";
/** A repository policy that takes the organisation's name, matches nothing and names another owner. */
const PERMISSIVE = `${REPO_CONFIG}policies:\n  - name: no-forbidden-data\n    rule: "false"\n    effect: warn\n    owners: { users: [mallory] }\n`;

const resource = (name: string, value = "v") => `resource "terraform_data" "${name}" {\n  input = "${value}"\n}\n`;
const contentsReads = () => h.fake.requestsTo("GET", /^\/repos\/acme\/policies\/contents\//).length;
const latestGroup = async (p: Pr) =>
  (await h.db.pool.query<{ policies: PolicyConfig[] }>("select policies from run_groups where pull_number = $1 and sha = $2 order by id desc limit 1", [p.number, p.sha])).rows[0]!;

/** Moves the policy repository's default branch to a commit with `text` as its policy file (null: none). */
const publishPolicies = (text: string | null) => policyRepo.commit({ [POLICY_FILE]: text, "README.md": `policies ${Math.random()}` }, "main");

beforeAll(async () => {
  h = await startHarness({ PLANGATE_POLICY_REPO: `${POLICY_OWNER}/policies` });
  // The policy repository is another account's: only that account's installation may read it (the fake refuses any other token).
  h.fake.installations.set(POLICY_OWNER, POLICY_INSTALLATION);
  policyRepo = new GitRepo(h.fake.gitRoot, POLICY_OWNER, "policies");
  publishPolicies(ORG_POLICIES);
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo);
  for (const user of ["sam", "mallory", "alice", prs.author]) h.fake.permissions.set(`${OWNER}/${NAME}:${user}`, "write");
  repo.commit({ ".plangate.yml": REPO_CONFIG, "infra/main.tf": resource("base") });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

describe("the organisation's policies judge every plan", () => {
  engineTest("a repository without policies of its own is denied by the organisation's; the policy is stored with the plan, marked as the organisation's", async () => {
    const p = await prs.open({ "infra/main.tf": resource("base") + resource("forbidden") }, ["infra/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
    expect(prs.check("plangate/approval", p.sha)?.conclusion).not.toBe("success");
    const comment = prs.comments(p).at(-1)!;
    expect(comment).toContain("**Policy violated: this project cannot be approved or applied until an owner overrides it.**");
    expect(comment).toContain("⛔ `no-forbidden-data` (organisation) · deny · terraform_data named forbidden* is refused organisation-wide. · `terraform_data.forbidden`");
    const violated = (await prs.audit(p)).filter((a) => a.action === "policy.violated");
    expect(violated).toEqual([expect.objectContaining({ details: expect.objectContaining({ policy: "no-forbidden-data", effect: "deny", source: "organisation", addresses: ["terraform_data.forbidden"] }) })]);
    const { policies } = await latestGroup(p);
    expect(policies).toEqual([expect.objectContaining({ name: "no-forbidden-data", effect: "deny", owners: { teams: [], users: ["sam"] }, source: "organisation" })]);
    await prs.close(p);
  });

  engineTest("a policy of the same name in the PR's or the default branch's .plangate.yml neither weakens it nor lends it its owners", async () => {
    // The PR's own file takes the organisation's name for a rule that matches nothing, owned by mallory; then the default branch's file does the same.
    const opened = [
      () => prs.open({ ".plangate.yml": PERMISSIVE, "infra/main.tf": resource("base") + resource("forbidden_pr") }, [".plangate.yml", "infra/main.tf"]),
      () => {
        repo.commit({ ".plangate.yml": PERMISSIVE }, "main");
        return prs.open({ "infra/main.tf": resource("base") + resource("forbidden_base") }, ["infra/main.tf"]);
      },
    ];
    for (const open of opened) {
      const p = await open();
      expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
      expect(prs.comments(p).at(-1)).toContain("⛔ `no-forbidden-data` (organisation) · deny");
      // One policy answers to the name, the organisation's, with its rule and owners; the repository's is judged beside it under another name.
      const { policies } = await latestGroup(p);
      expect(policies.filter((x) => x.name === "no-forbidden-data")).toEqual([expect.objectContaining({ rule: expect.stringContaining("startsWith"), owners: { teams: [], users: ["sam"] }, source: "organisation" })]);
      expect(policies).toContainEqual({ name: "no-forbidden-data.2", rule: "false", effect: "warn", owners: { teams: [], users: ["mallory"] } });
      // mallory owns the namesake, not the organisation's policy: her override is refused and the plan stays failed.
      await prs.comment(p, "/override no-forbidden-data my own policy says so", "mallory");
      expect(prs.comments(p).at(-1)).toContain("is accepted only from the policy's owners (@\u200bsam) with write permission. Nothing changed.");
      expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
      expect((await prs.audit(p)).map((a) => a.action)).not.toContain("policy.overridden");
      // The organisation policy's owner may.
      await prs.comment(p, "/override no-forbidden-data SEC-1 reviewed", "sam");
      expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
      await prs.close(p);
    }
    repo.commit({ ".plangate.yml": REPO_CONFIG }, "main");
  });
});

describe("read once per commit of the policy repository", () => {
  engineTest("plans of several PRs and pushes on one policy commit read the file once; a new commit is read once more and applies from the next plan", async () => {
    publishPolicies(withDeny("later"));
    const before = contentsReads();
    const installationsAsked = h.fake.requestsTo("GET", /^\/repos\/acme\/policies\/installation$/).length;
    const first = await prs.open({ "infra/main.tf": resource("base") + resource("allowed") }, ["infra/main.tf"]);
    expect(prs.check("plangate/plan", first.sha)?.conclusion).toBe("success");
    const pushed = await prs.push(first, { "infra/main.tf": resource("base") + resource("allowed", "v2") }, ["infra/main.tf"]);
    expect(prs.check("plangate/plan", pushed.sha)?.conclusion).toBe("success");
    await prs.close(pushed);
    const second = await prs.open({ "infra/main.tf": resource("base") + resource("later_one") }, ["infra/main.tf"]);
    expect(prs.check("plangate/plan", second.sha)?.conclusion).toBe("failure");
    expect(prs.comments(second).at(-1)).toContain("⛔ `no-later` (organisation) · deny · later* is refused too. · `terraform_data.later_one`");
    await prs.close(second);
    expect(contentsReads() - before).toBe(1);
    // Each plan found the policy repository's installation and its head anew (the file it did not read again).
    expect(h.fake.requestsTo("GET", /^\/repos\/acme\/policies\/installation$/).length - installationsAsked).toBe(3);

    // The policy repository's head moves: the next plan reads the new file, and its policy holds at once.
    publishPolicies(withDeny("allowed"));
    const third = await prs.open({ "infra/main.tf": resource("base") + resource("allowed") }, ["infra/main.tf"]);
    expect(prs.check("plangate/plan", third.sha)?.conclusion).toBe("failure");
    expect(prs.comments(third).at(-1)).toContain("⛔ `no-allowed` (organisation) · deny");
    await prs.close(third);
    expect(contentsReads() - before).toBe(2);
  });
});

describe("fail closed: when the organisation's policies cannot be read, nothing is planned", () => {
  /** Opens a PR, and checks that its project failed without a plan, saying `reason`; returns the audit row. */
  const refused = async (reason: string | RegExp) => {
    const p = await prs.open({ "infra/main.tf": resource("base") + resource("allowed", String(Math.random())) }, ["infra/main.tf"]);
    const check = prs.check("plangate/plan", p.sha)!;
    expect(check).toMatchObject({ status: "completed", conclusion: "failure", output: { title: "Plan failed: infra" } });
    expect(prs.check("plangate/approval", p.sha)?.conclusion).not.toBe("success");
    const comment = prs.comments(p).at(-1)!;
    expect(comment).toContain("Not planned: the organisation's policies cannot be read, and nothing is planned without them. PLANGATE_POLICY_REPO is `acme/policies`;");
    expect(comment).toMatch(reason);
    const audit = await prs.audit(p);
    expect(audit.map((a) => a.action)).not.toContain("plan.started");
    expect(audit.map((a) => a.action)).not.toContain("plan.succeeded");
    const failed = audit.find((a) => a.action === "plan.failed")!;
    expect(failed.details).toMatchObject({ stage: "org-policies", policyRepo: "acme/policies" });
    const planned = await h.db.pool.query("select 1 from plans pl join runs r on r.id = pl.run_id where r.pull_number = $1", [p.number]);
    expect(planned.rowCount).toBe(0);
    await prs.close(p);
    return failed.details;
  };

  test("no .plangate-policies.yml on the default branch", async () => {
    const sha = publishPolicies(null);
    const details = await refused(`its default branch (at \`${sha.slice(0, 7)}\`) has no \`.plangate-policies.yml\``);
    expect(details).toMatchObject({ policySha: sha, problem: { kind: "no-file" } });
  });

  test("invalid YAML, named at its line and column", async () => {
    publishPolicies("version: 1\npolicies: [\n");
    const details = await refused(/its `.plangate-policies.yml` \(at `[0-9a-f]{7}`\) is invalid: `.plangate-policies.yml:\d+:\d+` /);
    expect(details).toMatchObject({ problem: { kind: "invalid", problems: [expect.objectContaining({ line: expect.any(Number) })] } });
  });

  test("a CEL rule that does not compile, named at its place in the rule", async () => {
    publishPolicies("version: 1\npolicies:\n  - name: broken\n    rule: resource.type == 42 &&\n");
    const details = await refused(/is invalid: `.plangate-policies.yml:4:\d+` policies\[0\]\.rule: /);
    expect(details).toMatchObject({ problem: { kind: "invalid", problems: [{ line: 4, message: expect.stringMatching(/^policies\[0\]\.rule: /) }] } });
  });

  test("the App is not installed on the policy repository's account", async () => {
    publishPolicies(ORG_POLICIES);
    h.fake.installations.delete(POLICY_OWNER);
    try {
      const details = await refused("the plangate GitHub App is not installed on it (or cannot see it)");
      expect(details).toMatchObject({ policySha: null, problem: { kind: "not-installed" } });
    } finally {
      h.fake.installations.set(POLICY_OWNER, POLICY_INSTALLATION);
    }
  });

  test("GitHub refuses to read the file; the next plan reads it again and plans", async () => {
    publishPolicies(ORG_POLICIES);
    h.fake.fail("GET", /^\/repos\/acme\/policies\/contents\//, 403, 1, { message: "Resource not accessible by integration" });
    const details = await refused("GitHub answered 403 while it was read: Resource not accessible by integration");
    expect(details).toMatchObject({ problem: { kind: "github", status: 403 } });
  });

  engineTest("once the policies can be read again, plans plan", async () => {
    const p = await prs.open({ "infra/main.tf": resource("base") + resource("allowed", "again") }, ["infra/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect((await latestGroup(p)).policies.filter((x) => x.source === "organisation")).toHaveLength(1);
    await prs.close(p);
  });
});
