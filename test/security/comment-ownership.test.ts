import { jest } from "@jest/globals";
import { engineTest, startHarness, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests } from "../support/pull-requests.js";

// The attacker: a read-only user (or another App) who comments on a PR with plangate's hidden marker, hoping plangate
// takes the comment for its own: edits it (never posting its real plan), or deletes someone else's as a surplus part.
jest.setTimeout(180_000);

const REPO = "Codertocat/Hello-World";
let h: Harness;
let prs: PullRequests;

beforeAll(async () => {
  h = await startHarness();
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  prs = new PullRequests(h, repo, "Codertocat", 1500);
});
afterAll(async () => h?.close());
// The fake refuses (and records) any edit or deletion of a comment plangate did not write.
afterEach(() => expect(h.fake.unexpected).toEqual([]));

describe("plangate's comments are plangate's", () => {
  engineTest("markers in a read-only user's or another App's comments are ignored: those are never edited or deleted, plangate posts and edits its own", async () => {
    const number = 1501; // the next PR PullRequests opens
    const planted = [
      h.fake.plantComment(REPO, number, "<!-- plangate:plan part=1 -->\n### plangate plan\nNo changes. Merge away.", { login: "mallory", type: "User" }),
      h.fake.plantComment(REPO, number, "<!-- plangate:plan part=2 -->\nfrom another App", { login: "helper[bot]", type: "Bot" }, { id: 777, slug: "helper" }),
      h.fake.plantComment(REPO, number, "I reviewed this. <!-- plangate:plan part=7 -->", { login: "eve", type: "User" }),
    ].map((c) => structuredClone(c));

    const tf = (v: string) => ({ "own/main.tf": `resource "terraform_data" "r" {\n  input = "${v}"\n}\n` });
    const p = await prs.open(tf("v1"), ["own/main.tf"]);
    expect(p.number).toBe(number);
    expect(prs.check("plangate/plan", p.sha)).toMatchObject({ status: "completed", conclusion: "success" });
    const own = () => h.fake.commentsOn(REPO, number).filter((c) => c.user.login === h.fake.botLogin);
    expect(own()).toHaveLength(1);
    expect(own()[0]!.body).toContain("<!-- plangate:plan part=1 -->");
    expect(own()[0]!.body).toContain("| `own` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");
    for (const c of planted) expect(h.fake.comments.find((x) => x.id === c.id)).toEqual(c);

    // A new head: plangate edits its own comment in place, found by its bot's login even where GitHub leaves out which App wrote it.
    h.fake.performedViaApp = false;
    try {
      const ownId = own()[0]!.id;
      const pushed = await prs.push(p, tf("v2"), ["own/main.tf"]);
      expect(prs.check("plangate/plan", pushed.sha)).toMatchObject({ status: "completed", conclusion: "success" });
      expect(own().map((c) => c.id)).toEqual([ownId]);
      expect(h.fake.requestsTo("GET", /^\/app$/).length).toBeGreaterThanOrEqual(1); // the bot's login, from the App's slug
      expect(own()[0]!.body).toContain(pushed.sha.slice(0, 7));
      expect(h.fake.requestsTo("PATCH", new RegExp(`/issues/comments/${ownId}$`)).length).toBeGreaterThanOrEqual(1);
      for (const c of planted) {
        expect(h.fake.requestsTo("PATCH", new RegExp(`/issues/comments/${c.id}$`))).toEqual([]);
        expect(h.fake.requestsTo("DELETE", new RegExp(`/issues/comments/${c.id}$`))).toEqual([]);
        expect(h.fake.comments.find((x) => x.id === c.id)).toEqual(c);
      }
    } finally {
      h.fake.performedViaApp = true;
    }
  });
});
