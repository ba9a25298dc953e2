import { jest } from "@jest/globals";
import { engineTest, queueDrained, shortBackoff, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(170_000);

/**
 * GitHub's git endpoint failing every fetch of a plan: the queue retries the
 * job (five attempts, about 85 s of backoff, cut here to seconds: see
 * shortBackoff), then the PR is told: a failed plangate/plan, a comment with
 * git's reason, a plan.failed audit event, no lock. The next push plans
 * normally.
 */
const REPO = "Codertocat/Hello-World";
const FETCH = /^\/Codertocat\/Hello-World\.git\/git-upload-pack$/;
const ATTEMPTS = 5; // plan-pull-request jobs' max_attempts
let h: Harness;
let repo: GitRepo;
let backoffShortened: () => Promise<void>;

beforeAll(async () => {
  h = await startHarness({ PLANGATE_WORKERS: "1" });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
  backoffShortened = shortBackoff(h.db);
});
afterAll(async () => {
  await backoffShortened?.();
  await h?.close();
});
afterEach(() => expect(h.fake.unexpected).toEqual([]));

async function push(n: number, count: number, action: "opened" | "synchronize"): Promise<string> {
  const sha = repo.commit({ "fetched/main.tf": `resource "terraform_data" "r" {\n  count = ${count}\n  input = "\${count.index}"\n}\n` }, `git-${n}`);
  h.fake.pullFiles.set(`${REPO}#${n}`, ["fetched/main.tf"]);
  h.fake.pulls.set(`${REPO}#${n}`, { headSha: sha });
  const payload = examplePayload("pull_request", action);
  Object.assign(payload.pull_request, { number: n, draft: false });
  payload.pull_request.head.sha = sha;
  expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);
  return sha;
}

async function outcome(n: number, sha: string) {
  const check = await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"), 150_000);
  await queueDrained(h.db);
  const audit = await h.db.pool.query("select action, details from audit_events where sha = $1 and action like 'plan.%' order by id", [sha]);
  const locks = await h.db.pool.query("select project from locks where pull_number = $1", [n]);
  return { check, comments: h.fake.commentsOn(REPO, n).map((c) => asShown(c.body)), audit: audit.rows, locks: locks.rows };
}

engineTest("git fetch failing on every attempt: the PR is told why, audited, no lock; the next push plans", async () => {
  // Every fetch fails: the first attempt's of the pushed head (at once) and of the base branch beside it, each retry's of both together.
  h.fake.fail("POST", FETCH, 500, 1000, { message: "git is down" });
  const sha = await push(71, 1, "opened");
  const failed = await outcome(71, sha);
  h.fake.clearFaults();
  expect(h.fake.requestsTo("POST", FETCH)).toHaveLength(ATTEMPTS + 1);
  expect(failed.check.conclusion).toBe("failure");
  expect(failed.check.output?.title).toBe("plangate could not plan");
  expect(failed.comments).toHaveLength(1);
  expect(failed.comments[0]).toContain(`### ❌ plangate plan for \`${sha.slice(0, 7)}\``);
  expect(failed.comments[0]).toMatch(/plangate could not plan this pull request \(after retrying\): git fetch failed: .*500/);
  expect(failed.audit).toEqual([{ action: "plan.failed", details: { stage: "plangate", message: expect.stringMatching(/^git fetch failed: .*500/) } }]);
  expect(failed.locks).toEqual([]);

  const next = await push(71, 2, "synchronize");
  const ok = await outcome(71, next);
  expect(ok.check.conclusion).toBe("success");
  expect(ok.comments).toHaveLength(1); // the same comment, edited
  expect(ok.comments[0]).toContain("| `fetched` | `default` | ✅ planned | 2 | 0 | 0 | 0 |");
  expect(ok.audit.map((r) => r.action)).toEqual(["plan.started", "plan.succeeded"]);
  expect(ok.locks).toEqual([{ project: "fetched" }]);
});
