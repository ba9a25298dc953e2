import { jest } from "@jest/globals";
import { countChanges, type PlanChanges, type ResourceChange } from "../../src/plans/changes.js";
import { renderPlanCheck } from "../../src/render/plan-check.js";
import { renderPlanComment } from "../../src/render/plan-comment.js";
import type { PlanReport } from "../../src/render/plan-report.js";
import { breakAutolinks, inertMarkdown, ZWSP } from "../../src/text/inert-text.js";
import { checkSummary, checkTitle, loadTemplates, type Templates } from "../../src/render/templates.js";
import { queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { asShown, liveMarkup, outsideCode } from "../support/markdown.js";
import { deliver, examplePayload } from "../support/webhooks.js";

// The attacker: a commenter or PR author who names things (stacks, projects, workspaces, resources,
// policy and config text, command arguments) so that plangate's own comments ping a team or carry a link.
jest.setTimeout(120_000);

const HOSTILE = ["@acme/security-team", "[click](https://evil.example)", "![x](https://evil.example/p.png)", "https://evil.example", "www.evil.example", "<img src=x>"];
const ALL = HOSTILE.join(" ");
const sha = "0123456789abcdef0123456789abcdef01234567";
let t: Templates;
beforeAll(async () => {
  t = await loadTemplates();
});

/** The hostile text as a reader sees it: the same characters, with invisible breaks. */
const shown = (text: string) => asShown(text).replaceAll(ZWSP, "");

describe("inert text (the pure neutraliser)", () => {
  test.each(HOSTILE)("%s renders as the same characters and is not live", (hostile) => {
    expect(liveMarkup(hostile)).not.toEqual([]); // the checker sees the attack in raw text
    const inert = inertMarkdown(hostile);
    expect(liveMarkup(inert)).toEqual([]);
    expect(shown(inert)).toBe(hostile);
  });

  test("an @ never mentions, and no scheme:// or www. survives unbroken", () => {
    expect(inertMarkdown("@acme/security-team")).toBe(`@${ZWSP}acme/security-team`);
    expect(inertMarkdown("[click](https://evil.example)")).toBe(`&#91;click&#93;(https:${ZWSP}//evil.example)`);
    expect(breakAutolinks("mail a@b.example or WWW.evil.example")).toBe(`mail a@${ZWSP}b.example or WWW${ZWSP}.evil.example`);
  });

  test("entities written by an attacker stay literal text", () => {
    expect(inertMarkdown("&#64;acme &#91;x&#93;(y)")).toBe("&amp;#64;acme &amp;#91;x&amp;#93;(y)");
    expect(liveMarkup(inertMarkdown("&#64;acme"))).toEqual([]);
  });
});

const resource = (address: string): ResourceChange => ({ address, type: "terraform_data", action: "replace", actions: ["delete", "create"], before: { input: ALL }, after: { input: "x" }, replacePaths: [[ALL]] });
const changes = (...resources: ResourceChange[]): PlanChanges => ({ resources, counts: countChanges(resources) });

function hostileReport(): PlanReport {
  return {
    repo: "o/r",
    sha,
    applyModes: ["both"],
    ruleChanges: [`approvals of ${ALL}`],
    projects: [
      { name: "@acme/security-team", workspace: "[click](https://evil.example)", status: "succeeded", changes: changes(resource(`terraform_data.a["${ALL}"]`)) },
      { name: "![x](https://evil.example/p.png)", workspace: "<img src=x>", status: "failed", failure: { stage: "policy", message: ALL, violations: [{ policy: 0, rule: "deny", actions: ["destroy"], resourceTypes: [ALL], addressPatterns: [ALL], addresses: [ALL] }] }, changes: changes(resource("terraform_data.b")) },
      { name: "www.evil.example", workspace: "default", status: "failed", failure: { stage: "plan", message: `locked by ${ALL}`, output: `Error: ${ALL}` } },
      { name: "https://evil.example", workspace: "default", status: "failed", failure: { stage: "init", message: ALL } },
    ],
  };
}

describe("every renderer keeps hostile names inert", () => {
  test("the plan comment: a <summary> named @acme/security-team pings nobody", () => {
    const parts = renderPlanComment(t, hostileReport());
    const body = parts.join("\n");
    expect(liveMarkup(body)).toEqual([]);
    expect(body).toContain(`<summary><b>@${ZWSP}acme/security-team</b>`);
    expect(shown(body)).toContain("<summary><b>@acme/security-team</b> · [click](https://evil.example) · ✅ planned");
    // Inside code nothing is altered: the address and the diff show verbatim.
    expect(body).toContain(`\`terraform_data.a["${ALL}"]\``);
    expect(body).toContain('- input = "@acme/security-team [click](https://evil.example)');
  });

  test("the plan check run: summary and text inert, title plain text without entities", () => {
    const { output } = renderPlanCheck(t, hostileReport());
    expect(liveMarkup(output.summary)).toEqual([]);
    expect(liveMarkup(output.text!)).toEqual([]);
    // A policy's hostile globs, worded by policy-violation.hbs, show as written and link nothing.
    expect(shown(output.summary)).toContain(`- policy 1 denies destroy of types ${ALL}, addresses ${ALL}: \`${ALL}\``);
    expect(output.title).toBe(`Plan failed: ![x](https:${ZWSP}//evil.example/p.png), www${ZWSP}.evil.example, https:${ZWSP}//evil.example`);
    const invalid = checkTitle(t, "plan-config-invalid", { file: "<img src=x> @acme/x" });
    expect(invalid).toBe(`<img src=x> @${ZWSP}acme/x is invalid`);
  });

  test("config errors, usage replies, command replies, lock refusals, apply denials and results", () => {
    const problems = [{ where: ".plangate.yml:3:5", message: `unknown key ${ALL}` }];
    const rendered = [
      t.render("config-error", { marker: "<!-- m -->", file: ".plangate.yml", shortSha: "0123456", problems }),
      checkSummary(t, "plan-config-invalid", { problems }),
      t.render("usage", { problem: `unexpected argument ${ALL}`, line: `/plan ${ALL}` }),
      t.render("help", { problems, shortSha: "0123456" }),
      t.render("command-reply", { reason: "no-projects", command: "plan", selectorText: ALL, known: HOSTILE }),
      t.render("lock-refused", { project: ALL, workspace: ALL, holder: ALL }),
      t.render("apply-denied", { marker: "<!-- m -->", shortSha: "0123456", reason: ALL, mismatches: [{ project: ALL, approved: ALL, fresh: ALL }] }),
      t.render("apply-result", { marker: "<!-- m -->", shortSha: "0123456", failed: true, lockNote: ALL, units: [{ project: ALL, workspace: ALL, resultText: ALL, output: ALL, fence: "```", failed: true }] }),
      t.render("check-approval", { shortSha: "0123456", author: "author", missing: [{ project: ALL, have: 0, needed: 1, from: HOSTILE }] }),
      t.render("unlock-reply", { actor: "writer", released: [{ project: ALL, workspace: ALL }] }),
      // The organisation's policy file's problems and GitHub's answer are kept raw in the run's message and made inert where it is shown.
      ...[{ kind: "invalid", problems: [{ line: 1, column: 2, message: ALL }] }, { kind: "github", status: 403, message: ALL }].map((problem) =>
        t.render("plan-error", { message: t.render("org-policies-unavailable", { repo: ALL, file: ".plangate-policies.yml", shortSha: "0123456", problem }) }),
      ),
    ];
    // Only the mentions the wording means (the PR author, the commenter; GitHub logins) are live.
    for (const text of rendered) expect(liveMarkup(text).filter((m) => !["@author", "@writer"].includes(m))).toEqual([]);
    expect(shown(rendered[0]!)).toContain(`- \`.plangate.yml:3:5\`: unknown key ${ALL}`);
  });

  test("the run page is HTML: tags escaped, text untouched", () => {
    const html = t.render("run-page", { kind: "plan", sha, shortSha: "0123456", repo: "o/r", projects: [{ name: ALL, workspace: ALL, resources: [], failure: { message: ALL } }] });
    expect(html).not.toContain("<img src=x>");
    expect(html).toContain("&lt;img src&#x3D;x&gt;");
    expect(html).not.toContain(ZWSP);
  });
});

describe("end to end: a comment whose arguments would ping a team", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ PLANGATE_WORKERS: "1" });
  });
  afterAll(async () => h?.close());

  const REPO = "Codertocat/Hello-World";
  async function comment(number: number, body: string) {
    const payload = examplePayload("issue_comment", "created");
    payload.issue = { ...payload.issue, number, pull_request: { url: `http://x/repos/${REPO}/pulls/${number}` } };
    payload.comment = { ...payload.comment, id: 70_000 + number, body, user: { ...payload.comment.user, login: "writer", type: "User" } };
    payload.sender = { ...payload.sender, login: "writer", type: "User" };
    expect((await deliver(h.url, "issue_comment", payload, WEBHOOK_SECRET)).status).toBe(200);
    await queueDrained(h.db);
    return waitFor("the usage reply", () => h.fake.commentsOn(REPO, number).at(-1)?.body);
  }

  test("`/plan @acme/admins` gets a usage reply that mentions nobody", async () => {
    const body = await comment(31, "/plan @acme/admins");
    expect(liveMarkup(body)).toEqual([]);
    expect(outsideCode(body)).not.toMatch(/@[A-Za-z0-9]/);
    expect(body).toContain("`/plan @acme/admins`"); // the echoed line, in code, verbatim
    expect(shown(body)).toContain("`/plan @acme/admins`: unexpected argument @acme/admins. Nothing was run.");
  });

  test("a link, an image and a bare URL as arguments stay text", async () => {
    const body = await comment(32, "/plan -p [click](https://evil.example) ![x](https://evil.example/p.png)");
    expect(liveMarkup(body)).toEqual([]);
    expect(shown(body)).toContain('project "[click](https://evil.example)" may hold only letters');
    expect(h.fake.unexpected).toEqual([]);
  });
});
