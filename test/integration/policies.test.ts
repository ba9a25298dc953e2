import { jest } from "@jest/globals";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { liveMarkup } from "../support/markdown.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";

/**
 * CEL policies end to end, on the test GitHub with real terraform: a deny
 * fails plangate/plan until one of its owners overrides it, for that plan
 * only; a warn is shown; a require_approval waits for its owners. The
 * attackers: the PR's author (who is even in the owning team), a writer who
 * owns nothing, a read-only owner, and a PR that drops the policies from its
 * own .plangate.yml.
 */
jest.setTimeout(300_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const BASE_CONFIG = `version: 1
projects:
  - name: app
    dir: app
policies:
  - name: no-forbidden
    rule: resource.name.startsWith("forbidden") && "create" in resource.actions
    effect: deny
    message: Forbidden resources need the security team.
    owners: { teams: [security], users: [carol] }
  - name: note-temp
    rule: resource.name.startsWith("temp")
    effect: warn
    message: Temporary resources are cleaned up weekly.
  - name: big-change
    scope: plan
    rule: plan.add >= 3
    effect: require_approval
    owners: { teams: [platform] }
  - name: numbered
    rule: resource.name.startsWith("numbered") && int(resource.after.input) > 0
    message: Numbered inputs must be positive.
    owners: { users: [carol] }
`;
const data = (name: string, input: string) => `resource "terraform_data" "${name}" {\n  input = "${input}"\n}\n`;

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo);
  for (const user of ["alice", "carol", "dave", "erin", prs.author]) h.fake.permissions.set(`${OWNER}/${NAME}:${user}`, "write");
  h.fake.permissions.set(`${OWNER}/${NAME}:rita`, "read");
  // The author and a read-only user are both in the owning team: neither may override.
  h.fake.teams.set(`${OWNER}/security`, ["dave", "rita", prs.author]);
  h.fake.teams.set(`${OWNER}/platform`, ["erin"]);
  repo.commit({ ".plangate.yml": BASE_CONFIG, "app/main.tf": data("base", "v0") });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

const lastComment = (p: Pr) => prs.comments(p).at(-1)!;
const planComment = (p: Pr) => prs.comments(p).filter((c) => c.includes("**Policies**")).at(-1) ?? "";
const actions = async (p: Pr) => (await prs.audit(p)).map((a) => a.action);

describe("deny", () => {
  engineTest("fails plangate/plan naming the policy and the addresses; only an owner with write, not the author, overrides it, for this plan only", async () => {
    const p = await prs.open({ "app/main.tf": data("base", "v0") + data("forbidden_one", "x") }, ["app/main.tf"]);
    const check = prs.check("plangate/plan", p.sha)!;
    expect(check.conclusion).toBe("failure");
    expect(check.output?.summary).toContain("`no-forbidden`");
    expect(check.output?.summary).toContain("`terraform_data.forbidden_one`");
    const comment = planComment(p);
    expect(comment).toContain("**Policy violated: this project cannot be approved or applied until an owner overrides it.**");
    expect(comment).toContain("⛔ `no-forbidden` · deny · Forbidden resources need the security team. · `terraform_data.forbidden_one`");
    expect(comment).toContain("may let this plan through: `/override no-forbidden REASON`");
    const violated = (await prs.audit(p)).filter((a) => a.action === "policy.violated");
    expect(violated).toEqual([expect.objectContaining({ details: expect.objectContaining({ policy: "no-forbidden", effect: "deny", addresses: ["terraform_data.forbidden_one"] }) })]);

    // A writer who owns nothing, the author (in the owning team), a read-only owner: each is told why, and nothing changes.
    await prs.comment(p, "/override no-forbidden I reviewed it", "alice");
    expect(lastComment(p)).toContain("is accepted only from the policy's owners (team security, @\u200bcarol) with write permission. Nothing changed.");
    await prs.comment(p, "/override no-forbidden my own change is fine", prs.author);
    expect(lastComment(p)).toContain("the pull request's author never overrides a policy for their own change");
    await prs.comment(p, "/override no-forbidden reading is enough", "rita");
    expect(lastComment(p)).toContain("needs write permission");
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
    expect(await actions(p)).not.toContain("policy.overridden");
    const rejected = (await prs.audit(p)).filter((a) => a.action === "command.rejected").map((a) => [a.actor, a.details.reason]);
    expect(rejected).toEqual([["alice", "not-owner"], [prs.author, "author"], ["rita", "permission"]]);

    // An owner of the team, with write: the plan passes; the reason is shown inert and audited as given.
    const reason = "SEC-12 approved @everyone <img src=x onerror=alert(1)> [link](https://evil.example)";
    await prs.comment(p, `/override no-forbidden ${reason}`, "dave");
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    const overridden = planComment(p);
    expect(overridden).toContain("☑️ `no-forbidden`");
    expect(overridden).toContain("Overridden for this plan by @dave: SEC-12 approved");
    const raw = h.fake.commentsOn(`${OWNER}/${NAME}`, p.number).map((c) => c.body).find((b) => b.includes("Overridden for this plan"))!;
    // Only plangate's own markup is live (the overrider's name, the run link): nothing from the reason.
    expect(liveMarkup(raw).filter((m) => /everyone|evil|img|alert/.test(m))).toEqual([]);
    const audit = (await prs.audit(p)).find((a) => a.action === "policy.overridden")!;
    expect(audit).toMatchObject({ actor: "dave", details: { policy: "no-forbidden", reason, passes: true } });
    expect(audit.details.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    // The plan is approvable now: one approval from a writer who is not the author.
    await prs.review(p, "alice");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "completed", conclusion: "success" });

    // A push that changes the planned change voids the override, and the comment says so.
    const pushed = await prs.push(p, { "app/main.tf": data("base", "v0") + data("forbidden_one", "y") }, ["app/main.tf"]);
    expect(prs.check("plangate/plan", pushed.sha)?.conclusion).toBe("failure");
    expect(planComment(pushed)).toContain("The override by @dave was given on an earlier plan; this plan changes something else, so it no longer holds.");
    // The same change planned again (a /plan on the same commit) keeps an override given on it.
    await prs.comment(pushed, "/override no-forbidden SEC-13", "carol");
    expect(prs.check("plangate/plan", pushed.sha)?.conclusion).toBe("success");
    await prs.comment(pushed, "/plan", "alice");
    expect(prs.check("plangate/plan", pushed.sha)?.conclusion).toBe("success");
    expect(planComment(pushed)).toContain("Overridden for this plan by @carol: SEC-13");
    await prs.close(pushed);
  });

  engineTest("a PR that drops the policies from its own .plangate.yml is still judged by the base's", async () => {
    const p = await prs.open({ ".plangate.yml": "version: 1\nprojects:\n  - name: app\n    dir: app\npolicies: []\n", "app/main.tf": data("base", "v0") + data("forbidden_two", "x") }, [".plangate.yml", "app/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
    expect(planComment(p)).toContain("⛔ `no-forbidden` · deny");
    await prs.close(p);
  });

  engineTest("a rule that fails on a plan fails closed, naming the policy; its owner may still let the plan through", async () => {
    const p = await prs.open({ "app/main.tf": data("base", "v0") + data("numbered", "not-a-number") }, ["app/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
    expect(planComment(p)).toMatch(/⛔ `numbered` · could not be evaluated, so it fails closed: failed on terraform_data\.numbered: /);
    await prs.comment(p, "/override numbered the input is a label", "carol");
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    await prs.close(p);
  });
});

describe("warn and require_approval", () => {
  engineTest("a warn is shown and fails nothing; /override of it, or of a policy that matched nothing, changes nothing", async () => {
    const p = await prs.open({ "app/main.tf": data("base", "v0") + data("temp_cache", "x") }, ["app/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect(planComment(p)).toContain("⚠️ `note-temp` · warn · Temporary resources are cleaned up weekly. · `terraform_data.temp_cache`");
    expect(prs.check("plangate/plan", p.sha)?.output?.summary).toContain("⚠️ `note-temp`");
    await prs.comment(p, "/override note-temp fine", "carol");
    expect(lastComment(p)).toContain("policy `note-temp` does not hold back any plan of");
    await prs.comment(p, "/override no-such-policy fine", "carol");
    expect(lastComment(p)).toContain("no plan of");
    expect(lastComment(p)).toContain("matched a policy named `no-such-policy`");
    expect(await actions(p)).not.toContain("policy.overridden");
    await prs.close(p);
  });

  engineTest("require_approval keeps plangate/approval in progress until an owner approves; a non-owner's approval does not count for it", async () => {
    const p = await prs.open({ "app/main.tf": data("base", "v0") + data("a", "1") + data("b", "2") + data("c", "3") }, ["app/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect(planComment(p)).toContain("👥 `big-change` · require approval");
    expect(planComment(p)).toContain("Needs 1 approval of the planned commit from team platform.");
    expect(prs.check("plangate/approval", p.sha)?.output?.summary).toContain("| `app` (policy `big-change`) | 0 | 1 | team platform |");
    await prs.review(p, "alice");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval from team platform for policy big-change on app" } });
    await prs.review(p, "erin");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "completed", conclusion: "success", output: { title: "Approved by @alice, @erin" } });
    await prs.close(p);
  });
});

describe("hostile addresses", () => {
  engineTest("keys with markdown, mentions and RTL characters are shown inert", async () => {
    const tf = `resource "terraform_data" "forbidden" {\n  for_each = toset(["@everyone **bold** <img src=x>", "abc\u202edef", "[x](https://evil.example)"])\n  input = each.key\n}\n`;
    const p = await prs.open({ "app/main.tf": data("base", "v0") + tf }, ["app/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("failure");
    const raw = h.fake.commentsOn(`${OWNER}/${NAME}`, p.number).map((c) => c.body).find((b) => b.includes("**Policies**"))!;
    expect(liveMarkup(raw).filter((m) => /everyone|evil|img|bold/.test(m))).toEqual([]);
    expect(raw).not.toContain("\u202e");
    expect(planComment(p)).toContain("`terraform_data.forbidden[\"@everyone **bold** <img src=x>\"]`");
    await prs.close(p);
  });
});
