import { execFileSync } from "node:child_process";
import { jest } from "@jest/globals";
import { closePullRequest, engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";
import { deliver, examplePayload } from "../support/webhooks.js";

/**
 * A second attack pass on the gate of issue 21 (rows 2, 4, 6 and 19), as a
 * writer, a PR author or a co-pusher would try it once the first defences
 * were in: a rebase merge whose first parent carries the PR's own rules, a
 * PR so large that GitHub's file list leaves the protected file out, and a
 * PR ahead in the merge queue that drops its project from the config. Real
 * git, real terraform, the fake GitHub; the assertions are what the PR shows.
 */
jest.setTimeout(300_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
const REPO = `${OWNER}/${NAME}`;
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

const BASE_CONFIG = `version: 1
projects:
  - name: network
    dir: infra
    approvals: { required: 2, teams: [infra] }
  - name: cmd
    dir: cmd
  - name: qa
    dir: qa
  - name: qb
    dir: qb
`;
const resource = (name: string, value: string) => `resource "terraform_data" "${name}" {\n  input = "${value}"\n}\n`;
const applyCheck = (sha: string) => prs.check("plangate/apply", sha);
const actions = async (p: Pr) => (await prs.audit(p)).map((a) => a.action);
const git = (...args: string[]) =>
  execFileSync("git", args, { cwd: repo.work, encoding: "utf8", env: { ...process.env, GIT_COMMITTER_NAME: "GitHub", GIT_COMMITTER_EMAIL: "noreply@github.com", GIT_CONFIG_NOSYSTEM: "1" } }).trim();

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo, undefined, 700);
  for (const [user, permission] of [["alice", "write"], ["bob", "write"], ["carol", "write"], [prs.author, "write"]]) h.fake.permissions.set(`${REPO}:${user}`, permission!);
  h.fake.teams.set(`${OWNER}/infra`, ["alice", "bob"]);
  repo.commit({ ".plangate.yml": BASE_CONFIG, "infra/main.tf": resource("net", "v0"), "cmd/main.tf": resource("c", "v0"), "qa/main.tf": resource("qa", "v0"), "qb/main.tf": resource("qb", "v0") });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

describe("row 2: the rules a merge is judged by are the default branch's before the PR landed, whatever the merge method", () => {
  engineTest("a rebase merge whose first parent is the PR's own commit lowering the bar applies nothing without the base's approvals", async () => {
    // Commit 1 lowers the protected project's bar; commit 2 changes it.
    const lowered = BASE_CONFIG.replace("required: 2, teams: [infra]", "required: 0");
    const p = await prs.open({ ".plangate.yml": lowered }, [".plangate.yml"]);
    const pushed = await prs.push(p, { "infra/main.tf": resource("net", "rebased-in") }, [".plangate.yml", "infra/main.tf"], { as: prs.author });
    expect(prs.check("plangate/approval", pushed.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 2 more approvals from team infra for network" } });
    // "Rebase and merge": GitHub replays each commit onto main, keeping its author; the last one is the merge commit.
    const [first, second] = git("rev-list", "--reverse", `main..${p.branch}`).split("\n");
    git("checkout", "--quiet", "main");
    git("cherry-pick", "--quiet", first!, second!);
    git("push", "--quiet", "origin", "main");
    const mergeSha = repo.head();
    await closePullRequest(h, pushed.number, pushed.sha, { mergeSha, mergedBy: prs.author });
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "failure", output: { title: "Not applied" } });
    expect(prs.comments(p).at(-1)).toContain("(`network` has 0 of 2), so nothing was applied");
    expect(await actions(p)).not.toContain("apply.started");
    repo.commit({ ".plangate.yml": BASE_CONFIG }, "main");
  });
});

describe("row 6: a PR GitHub cannot list in full is never neutral", () => {
  engineTest("3,000 files ahead of cmd/main.tf in the PR's file list: plangate/plan fails, naming GitHub's limit", async () => {
    const bulk = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`bulk/f${String(i).padStart(4, "0")}.txt`, "x\n"]));
    const p = await prs.open({ ...bulk, "cmd/main.tf": resource("c", "hidden") }, [...Object.keys(bulk), "cmd/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)).toMatchObject({ conclusion: "failure" });
    expect(prs.check("plangate/plan", p.sha)?.output?.summary).toContain("GitHub lists at most 3000 files of a pull request");
    expect(prs.check("plangate/approval", p.sha)?.conclusion).not.toBe("neutral");
    await prs.close(p);
  });
});

describe("row 19: a queue commit whose change drops its project from the config is still checked against the default branch's projects", () => {
  let rawNumber = 790;

  /** PR A: drops qa from .plangate.yml and changes qa/main.tf. Its own checks stay pending (no plan of it covers qa). */
  async function openDroppingQa(): Promise<Pr> {
    const number = ++rawNumber;
    const branch = `pr-${number}`;
    const sha = repo.commit({ ".plangate.yml": BASE_CONFIG.replace("  - name: qa\n    dir: qa\n", ""), "qa/main.tf": resource("qa", "unreviewed") }, branch);
    h.fake.pullFiles.set(`${REPO}#${number}`, [".plangate.yml", "qa/main.tf"]);
    h.fake.pulls.set(`${REPO}#${number}`, { headSha: sha, author: prs.author });
    const payload = examplePayload("pull_request", "opened");
    Object.assign(payload.pull_request, { number, draft: false });
    payload.pull_request.head.sha = sha;
    expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);
    await waitFor("plangate/approval", () => prs.check("plangate/approval", sha));
    await queueDrained(h.db);
    expect(prs.check("plangate/plan", sha)).toMatchObject({ status: "in_progress" });
    return { number, branch, sha, base: "main", baseSha: repo.sha("main") };
  }

  engineTest("A's own queue commit, which no plan covers, fails instead of passing neutral", async () => {
    const a = await openDroppingQa();
    const queueA = await prs.queue(a);
    expect(prs.check("plangate/plan", queueA)?.conclusion).toBe("failure");
    expect(prs.check("plangate/approval", queueA)?.conclusion).toBe("failure");
    expect(prs.comments(a).at(-1)).toContain(`| \`qa\` | pull request #${a.number}, queue commit \`${queueA.slice(0, 7)}\` |`);
    await prs.close(a);
  });

  engineTest("B (approved) queued behind A fails, naming qa and A", async () => {
    const a = await openDroppingQa();
    const b = await prs.open({ "qb/main.tf": resource("qb", "approved") }, ["qb/main.tf"]);
    await prs.review(b, "alice");
    const queueA = await prs.queue(a);
    const queueB = await prs.queue(b, queueA);
    expect(prs.check("plangate/plan", queueB)).toMatchObject({ conclusion: "failure", output: { title: "Merge queue commit refused" } });
    expect(prs.comments(b).at(-1)).toContain(`| \`qa\` | pull request #${a.number}, queue commit \`${queueA.slice(0, 7)}\` |`);
    await prs.close(a);
    await prs.close(b);
  });
});

describe("row 3: a PR cannot re-spell the protected project's workspace out of its rules", () => {
  engineTest("the protected dir listed under a workspace the base does not know still needs 2 approvals from team infra", async () => {
    const config = `version: 1\nprojects:\n  - name: network\n    dir: infra\n    workspace: Default\n`;
    const p = await prs.open({ ".plangate.yml": config, "infra/main.tf": resource("net", "other-workspace") }, [".plangate.yml", "infra/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    await prs.review(p, "carol"); // write access, not in team infra
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 2 more approvals from team infra for network" } });
    const mergeSha = await prs.merge(p, "carol");
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "failure", output: { title: "Not applied" } });
    expect(await actions(p)).not.toContain("apply.started");
    repo.commit({ ".plangate.yml": BASE_CONFIG }, "main");
  });
});
