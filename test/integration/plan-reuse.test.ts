import { jest } from "@jest/globals";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";

/**
 * A push re-plans only the projects whose files changed (DESIGN.md section 1):
 * the others keep the earlier commit's plan, and the comment says so. /plan
 * plans afresh; a change in a module a project calls re-plans it; and the
 * merge still plans the merge commit afresh and applies only what matches.
 */
jest.setTimeout(300_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const CONFIG = "version: 1\nprojects:\n  - name: a\n    dir: a\n  - name: b\n    dir: b\n";
const data = (name: string, input: string) => `resource "terraform_data" "${name}" {\n  input = "${input}"\n}\n`;
const withModule = (value: string) => `module "m" {\n  source = "../modules/m"\n}\n${data("b", value)}`;
const MODULE = (value: string) => data("m", value);

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo);
  for (const user of ["alice", prs.author]) h.fake.permissions.set(`${OWNER}/${NAME}:${user}`, "write");
  repo.commit({ ".plangate.yml": CONFIG, "a/main.tf": data("a", "0"), "b/main.tf": withModule("0"), "modules/m/main.tf": MODULE("0") });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/** The projects planned afresh on a commit: each fresh plan is audited as plan.started. */
const startedOn = async (p: Pr) => (await prs.audit(p)).filter((a) => a.action === "plan.started" && a.sha === p.sha).map((a) => a.details.stack ?? "").length;
const planComment = (p: Pr) => prs.comments(p).filter((c) => c.includes("plangate plan for")).at(-1)!;
const FILES = ["a/main.tf", "b/main.tf", "modules/m/main.tf"];

describe("re-plan only what changed", () => {
  engineTest("a push that changes one project keeps the other's plan; /plan and a module change plan afresh; the merge applies what was reviewed", async () => {
    const opened = await prs.open({ "a/main.tf": data("a", "1"), "b/main.tf": withModule("1") }, FILES.slice(0, 2));
    expect(await startedOn(opened)).toBe(2);

    const pushed = await prs.push(opened, { "a/main.tf": data("a", "2") }, FILES.slice(0, 2));
    expect(prs.check("plangate/plan", pushed.sha)?.conclusion).toBe("success");
    expect(await startedOn(pushed)).toBe(1);
    const comment = planComment(pushed);
    expect(comment).toContain(`| \`b\` | \`default\` | ✅ planned ♻️ reused from ${opened.sha.slice(0, 7)} | 2 | 0 | 0 | 0 |`);
    expect(comment).toMatch(/\| `a` \| `default` \| ✅ planned \| 1 \|/);
    const reused = (await prs.audit(pushed)).find((a) => a.action === "plan.succeeded" && a.sha === pushed.sha && a.details.reusedFrom);
    expect(reused?.details).toMatchObject({ reusedFrom: opened.sha, add: 2 });

    // /plan forces a fresh plan of every affected project.
    await prs.comment(pushed, "/plan", "alice");
    expect(await startedOn(pushed)).toBe(3);
    expect(planComment(pushed)).not.toContain("reused from");

    // A change in the module b calls is a change of b (and not of a, which keeps the /plan's plan).
    const moduleChanged = await prs.push(pushed, { "modules/m/main.tf": MODULE("1") }, FILES);
    expect(await startedOn(moduleChanged)).toBe(1);
    expect(planComment(moduleChanged)).toContain(`| \`a\` | \`default\` | ✅ planned ♻️ reused from ${pushed.sha.slice(0, 7)} |`);
    expect(planComment(moduleChanged)).toMatch(/\| `b` \| `default` \| ✅ planned \| 2 \|/);

    // A push that changes only a again: b's plan is the module change's, reused; the merge plans afresh and applies both.
    const last = await prs.push(moduleChanged, { "a/main.tf": data("a", "3") }, FILES);
    expect(await startedOn(last)).toBe(1);
    expect(planComment(last)).toContain(`reused from ${moduleChanged.sha.slice(0, 7)}`);
    // Reused again by the next push: the comment names the commit b was planned at, not the push that last reused it.
    const again = await prs.push(last, { "a/main.tf": data("a", "4") }, FILES);
    expect(await startedOn(again)).toBe(1);
    expect(planComment(again)).toContain(`| \`b\` | \`default\` | ✅ planned ♻️ reused from ${moduleChanged.sha.slice(0, 7)} |`);
    const reusedAgain = (await prs.audit(again)).find((a) => a.action === "plan.succeeded" && a.sha === again.sha && a.details.reusedFrom);
    expect(reusedAgain?.details).toMatchObject({ reusedFrom: moduleChanged.sha });
    await prs.review(again, "alice");
    expect(prs.check("plangate/approval", again.sha)).toMatchObject({ conclusion: "success" });
    const mergeSha = await prs.merge(again);
    expect(prs.check("plangate/apply", mergeSha)).toMatchObject({ status: "completed", conclusion: "success" });
    const { rows } = await h.db.pool.query("select project from audit_events where action = 'apply.succeeded' and sha = $1 order by project", [mergeSha]);
    expect(rows.map((r) => r.project)).toEqual(["a", "b"]);
  });
});
