import { countChanges, type ResourceChange } from "../../src/plans/changes.js";
import { GITHUB_CHECK_TEXT_LIMIT } from "../../src/github/limits.js";
import { renderPlanCheck } from "../../src/render/plan-check.js";
import { clipText } from "../../src/text/clip-text.js";
import type { PlanReport } from "../../src/render/plan-report.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";

let t: Templates;
beforeAll(async () => {
  t = await loadTemplates();
});

const ACTIONS = ["update", "create", "delete"] as const;

/** 3,000 resources like a large module rollout: policies, tags and user data long enough that no check run holds them all. */
function bigReport(runUrl?: string): PlanReport {
  const resources: ResourceChange[] = Array.from({ length: 3000 }, (_, i) => {
    const action = ACTIONS[i % 3]!;
    const attrs = (version: number) => ({
      name: `service-${i}`,
      policy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: `arn:aws:s3:::bucket-${i}/v${version}/*` }] }),
      tags: { team: "platform", env: "prod", cost_center: `cc-${i % 17}`, revision: `r${version}` },
      user_data: `#!/bin/sh\nset -eu\necho "service ${i} revision ${version}"\n${"x".repeat(200)}\n`,
    });
    return { address: `aws_iam_role_policy.svc[${i}]`, type: "aws_iam_role_policy", action, actions: [action], before: action === "create" ? null : attrs(1), after: action === "delete" ? null : attrs(2) };
  });
  resources.sort((a, b) => ACTIONS.indexOf(a.action as (typeof ACTIONS)[number]) - ACTIONS.indexOf(b.action as (typeof ACTIONS)[number]));
  return {
    repo: "acme/infra",
    sha: "0123456789abcdef0123456789abcdef01234567",
    runUrl,
    projects: [
      { name: "small", workspace: "default", status: "succeeded", changes: { resources: resources.slice(0, 0), counts: countChanges([]) } },
      { name: "services", workspace: "prod", status: "succeeded", changes: { resources, counts: countChanges(resources) } },
    ],
  };
}

/** Lines opening or closing a code fence, and unclosed <details>, as GitHub's markdown sees them. */
const fenceLines = (text: string) => text.split("\n").filter((l) => /^`{3,}/.test(l)).length;
const openDetails = (text: string) => (text.match(/<details/g) ?? []).length - (text.match(/<\/details>/g) ?? []).length;

describe("the plan check run's text", () => {
  test("3,000 resources: whole resources within GitHub's limit, the rest counted by action, with a link to the run page", () => {
    const report = bigReport("https://plangate.example.com/runs/42?sig=abc");
    const { output } = renderPlanCheck(t, report);
    const text = output.text!;
    expect(text.length).toBeLessThanOrEqual(GITHUB_CHECK_TEXT_LIMIT);
    expect(fenceLines(text) % 2).toBe(0);
    expect(openDetails(text)).toBe(0);

    // every resource shown is whole: its heading line, then a complete diff
    const shown = [...text.matchAll(/^\S+ [-+~] `(aws_iam_role_policy\.svc\[\d+\])`\n```diff\n[^`]*?\n```$/gm)].map((m) => m[1]!);
    expect(shown.length).toBeGreaterThan(50);
    expect(shown.length).toBe((text.match(/`aws_iam_role_policy\.svc\[\d+\]`/g) ?? []).length);

    // what is not shown, by action, adds up to the rest
    const note = /^\*\*(\d+) more resources are not shown here\*\* \((.*?)\):/m.exec(text);
    expect(note).not.toBeNull();
    expect(Number(note![1])).toBe(3000 - shown.length);
    const byAction = Object.fromEntries([...note![2]!.matchAll(/([a-z ]+): (\d+)/g)].map((m) => [m[1]!.trim(), Number(m[2])]));
    const actionOf = new Map(report.projects[1]!.changes!.resources.map((r) => [r.address, r.action]));
    const shownBy = (action: string) => shown.filter((a) => actionOf.get(a) === action).length;
    expect(byAction).toEqual({ "update in place": 1000 - shownBy("update"), create: 1000 - shownBy("create"), destroy: 1000 - shownBy("delete") });
    expect(text).toContain("The [full plan](https://plangate.example.com/runs/42?sig=abc) is on the run page.");
    expect(text.trimEnd().endsWith("is on the run page.")).toBe(true);
  });

  test("without a run page, it says the full plan is in the pull request comment", () => {
    const text = renderPlanCheck(t, bigReport()).output.text!;
    expect(text.length).toBeLessThanOrEqual(GITHUB_CHECK_TEXT_LIMIT);
    expect(text).toMatch(/\*\*\d+ more resources are not shown here\*\* \(.+\): GitHub limits the size of check-run text\. The full plan is in the pull request's plangate comment\./);
    expect(text).not.toContain("](");
  });

  test("a plan that fits is shown whole, with no note", () => {
    const report = bigReport();
    report.projects[1]!.changes!.resources.splice(20);
    const text = renderPlanCheck(t, report).output.text!;
    expect((text.match(/^```diff$/gm) ?? []).length).toBe(20);
    expect(text).toContain("<summary><b>small</b> · default · ✅ no changes</summary>");
    expect(text).toContain("No changes. The infrastructure matches the configuration.");
    expect(text).not.toContain("not shown");
  });
});

describe("clipText", () => {
  test("a cut inside a fenced block and <details> closes both, then says it was cut", () => {
    const log = Array.from({ length: 5000 }, (_, i) => `aws_instance.web[${i}]: Creating... [id=i-${i.toString(16).padStart(17, "0")}]`).join("\n");
    const body = `### applied\n\n<details open><summary>web</summary>\n\n\`\`\`\`text\n${log}\n\`\`\`\`\n</details>\n\nafter\n`;
    const clipped = clipText(body, GITHUB_CHECK_TEXT_LIMIT);
    expect(clipped.length).toBeLessThanOrEqual(GITHUB_CHECK_TEXT_LIMIT);
    expect(fenceLines(clipped) % 2).toBe(0);
    expect(openDetails(clipped)).toBe(0);
    expect(clipped).toMatch(/\[id=i-[0-9a-f]{17}\]\n````\n<\/details>\n\n… \(cut to fit GitHub's check-run limit\)$/);
  });

  test("a fence that the kept text already closed is not closed twice; a short text is untouched", () => {
    const body = `\`\`\`text\nshort\n\`\`\`\n${"- a line of a long list\n".repeat(4000)}`;
    const clipped = clipText(body, 1000);
    expect(clipped.length).toBeLessThanOrEqual(1000);
    expect(fenceLines(clipped)).toBe(2);
    expect(clipText("fits", 1000)).toBe("fits");
  });
});
