import { jest } from "@jest/globals";
import { engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(120_000);

/**
 * GitHub's bad days while plangate posts its plan comment: server errors,
 * secondary rate limits and an exhausted primary limit. Octokit's retry and
 * throttling plugins wait them out inside the one request: the comment is
 * posted once, by the one plan run, and the check run completes.
 */
const REPO = "Codertocat/Hello-World";
let h: Harness;
let repo: GitRepo;

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

const commentsPath = (n: number) => new RegExp(`^/repos/${REPO}/issues/${n}/comments$`);

/** Opens PR `n` changing one terraform_data project, waits for its plan, returns what GitHub saw. */
async function planPr(n: number) {
  const sha = repo.commit({ [`p${n}/main.tf`]: `resource "terraform_data" "r" {\n  input = "${n}"\n}\n` }, `faults-${n}`);
  h.fake.pullFiles.set(`${REPO}#${n}`, [`p${n}/main.tf`]);
  h.fake.pulls.set(`${REPO}#${n}`, { headSha: sha });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number: n, draft: false });
  payload.pull_request.head.sha = sha;
  expect((await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET)).status).toBe(200);
  const check = await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed"));
  await queueDrained(h.db);
  const { rows } = await h.db.pool.query("select action from audit_events where sha = $1 and action like 'plan.%' order by id", [sha]);
  const posts = h.fake.requestsTo("POST", commentsPath(n));
  return { sha, check, comments: h.fake.commentsOn(REPO, n), audit: rows.map((r) => r.action), posts };
}

function expectPlannedOnce(result: Awaited<ReturnType<typeof planPr>>, n: number) {
  expect(result.check.conclusion).toBe("success");
  expect(result.comments).toHaveLength(1);
  expect(result.comments[0]!.body).toContain(`| \`p${n}\` | \`default\` | ✅ planned | 1 | 0 | 0 | 0 |`);
  // One plan run: the request was retried, not the job.
  expect(result.audit).toEqual(["plan.started", "plan.succeeded"]);
}

describe("GitHub failing the plan comment", () => {
  // Three failures each: more than the job's own attempts, so only retries inside the request get the comment out.
  engineTest("5xx three times: Octokit's retry plugin posts it on the fourth try", async () => {
    h.fake.fail("POST", commentsPath(41), 502, 1);
    h.fake.fail("POST", commentsPath(41), 503, 1);
    h.fake.fail("POST", commentsPath(41), 500, 1);
    const result = await planPr(41);
    expectPlannedOnce(result, 41);
    expect(result.posts).toHaveLength(4);
  });

  engineTest("secondary rate limit (403, retry-after): retried after retry-after until it passes", async () => {
    const message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
    h.fake.fail("POST", commentsPath(42), 403, 3, { headers: { "retry-after": "1" }, message });
    const result = await planPr(42);
    expectPlannedOnce(result, 42);
    expect(result.posts).toHaveLength(4);
    for (let i = 1; i < 4; i++) expect(result.posts[i]!.at - result.posts[i - 1]!.at).toBeGreaterThanOrEqual(1000);
  });

  engineTest("secondary rate limit (429, retry-after): retried after retry-after", async () => {
    const message = "You have exceeded a secondary rate limit and have been temporarily blocked from content creation.";
    h.fake.fail("POST", commentsPath(43), 429, 1, { headers: { "retry-after": "2" }, message });
    const result = await planPr(43);
    expectPlannedOnce(result, 43);
    expect(result.posts).toHaveLength(2);
    expect(result.posts[1]!.at - result.posts[0]!.at).toBeGreaterThanOrEqual(2000); // retry-after, not the retry plugin's 1 s
  });

  engineTest("primary rate limit exhausted (403, x-ratelimit-remaining 0): retried after x-ratelimit-reset", async () => {
    let reset = 0; // epoch seconds, set when GitHub answers: 1 to 2 s ahead
    const headers = () => {
      reset = Math.floor(Date.now() / 1000) + 2;
      return { "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) };
    };
    h.fake.fail("POST", commentsPath(44), 403, 1, { headers, message: "API rate limit exceeded for installation ID 424242." });
    const result = await planPr(44);
    expectPlannedOnce(result, 44);
    expect(result.posts).toHaveLength(2);
    expect(result.posts[1]!.at).toBeGreaterThanOrEqual(reset * 1000);
  });

  engineTest("a secondary limit asking for an hour is not waited out inside the job: the queue retries the job, the comment is posted once", async () => {
    const message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";
    h.fake.fail("POST", commentsPath(45), 403, 1, { headers: { "retry-after": "3600" }, message });
    const result = await planPr(45);
    expectPlannedOnce(result, 45);
    expect(result.posts).toHaveLength(2);
  });
});
