import { countChanges, type ChangeAction, type ResourceChange } from "../../src/plans/changes.js";
import { GITHUB_COMMENT_LIMIT } from "../../src/github/limits.js";
import { renderPlanComment } from "../../src/render/plan-comment.js";
import type { PlanReport, ProjectResult } from "../../src/render/plan-report.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";
import { asShown, liveMarkup } from "../support/markdown.js";

let t: Templates;
beforeAll(async () => {
  t = await loadTemplates();
});

const RUN_URL = "https://plangate.example.com/runs/42?expires=1&token=abc";
const ORDER: ChangeAction[] = ["delete", "replace", "update", "create"];
const TYPES: Record<string, string[]> = {
  delete: ["aws_s3_bucket", "aws_iam_role"],
  replace: ["aws_instance", "aws_launch_template"],
  update: ["aws_iam_role_policy", "aws_security_group", "aws_lambda_function"],
  create: ["aws_route53_record", "aws_cloudwatch_metric_alarm", "aws_sqs_queue", "aws_sns_topic"],
};

/** Attributes as a large rollout has them: policies, user data and tags long enough that a diff runs to tens of lines. */
const attrs = (i: number, version: number) => ({
  name: `service-${i}`,
  policy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:ListBucket"], Resource: [`arn:aws:s3:::bucket-${i}/v${version}/*`, `arn:aws:s3:::bucket-${i}`] }] }),
  tags: { team: "platform", env: "prod", cost_center: `cc-${i % 17}`, revision: `r${version}`, owner: "infra@example.com" },
  user_data: `#!/bin/sh\nset -eu\necho "service ${i} revision ${version}"\n${"x".repeat(300)}\ncurl -fsS https://config.example.com/${i}\n`,
});

/** `count` resources of `action`, spread over a few types, with addresses as terraform writes them (a hostile one among the destroys). */
function resources(action: ChangeAction, count: number, prefix = ""): ResourceChange[] {
  return Array.from({ length: count }, (_, i) => {
    const types = TYPES[action]!;
    const type = types[i % types.length]!;
    const name = action === "delete" && i === 7 ? `["@acme/security-team [x](https://evil.example)"]` : `[${i}]`;
    return {
      address: `${prefix}${type}.${action}_${Math.floor(i / types.length)}${name}`,
      type,
      action,
      actions: action === "replace" ? ["delete", "create"] : [action],
      before: action === "create" ? null : attrs(i, 1),
      after: action === "delete" ? null : attrs(i, 2),
      ...(action === "replace" ? { replacePaths: [["user_data"]] } : {}),
    };
  });
}

const project = (name: string, mix: Partial<Record<ChangeAction, number>>, prefix = ""): ProjectResult => {
  const list = ORDER.flatMap((a) => resources(a, mix[a] ?? 0, prefix));
  return { name, workspace: "default", status: "succeeded", changes: { resources: list, counts: countChanges(list) } };
};

const report = (projects: ProjectResult[], runUrl: string | null = RUN_URL): PlanReport => ({ repo: "acme/infra", sha: "0123456789abcdef0123456789abcdef01234567", runUrl: runUrl ?? undefined, applyModes: ["on_merge"], projects });

/** Walks a part as GitHub's markdown does: every fence closed and every <details> closed, never closed before it opens. */
function structure(part: string): { openFence: boolean; details: number; negative: boolean } {
  let fence: string | undefined;
  let details = 0;
  let negative = false;
  for (const line of part.split("\n")) {
    const marker = /^ {0,3}(`{3,})(.*)$/.exec(line);
    if (fence) {
      if (marker && marker[1]!.length >= fence.length && !marker[2]!.trim()) fence = undefined;
      continue;
    }
    if (marker) {
      fence = marker[1];
      continue;
    }
    details += (line.match(/<details\b/g) ?? []).length - (line.match(/<\/details>/g) ?? []).length;
    negative ||= details < 0;
  }
  return { openFence: !!fence, details, negative };
}

/** Addresses as the comment shows them, each in a code span (with or without its diff). */
const addressesIn = (text: string) => new Set([...asShown(text).matchAll(/^(?:- )?\S+ \S+ `([^`\n]+)`/gm)].map((m) => m[1]!));

/** Addresses shown with their diff. */
const withDiff = (text: string) => new Set([...asShown(text).matchAll(/^\S+ \S+ `([^`\n]+)`.*\n```diff$/gm)].map((m) => m[1]!));

/** The summary table's rows: [project?, action, type, count]. */
function tableRows(text: string): string[][] {
  const table = text.slice(text.indexOf("| action | resource type | count |") - (text.includes("| project | action |") ? "| project ".length : 0));
  return table
    .split("\n")
    .slice(2)
    .filter((l) => l.startsWith("|"))
    .map((l) => l.slice(1, -1).split("|").map((c) => c.trim().replace(/^`|`$/g, "")));
}

describe("a plan too large for the comment parts", () => {
  test("10,000 resources: 3 parts, every destroy and replace with its address, the rest counted by type, the run page linked", () => {
    const big = project("services", { delete: 300, replace: 200, update: 4500, create: 5000 });
    const all = big.changes!.resources;
    const parts = renderPlanComment(t, report([big]), { maxParts: 3 });

    expect(parts).toHaveLength(3);
    parts.forEach((part, i) => {
      expect(part.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
      expect(part).toContain(`<!-- plangate:plan part=${i + 1} -->`);
      expect(part).toContain(`part ${i + 1} of 3`);
      expect(structure(part)).toEqual({ openFence: false, details: 0, negative: false });
      expect(liveMarkup(part).filter((m) => !m.includes(RUN_URL))).toEqual([]);
    });
    const text = parts.join("\n");

    // every destroy and replace is on GitHub: destroys' diffs first, then replaces', then addresses alone
    const listed = addressesIn(text);
    const diffed = withDiff(text);
    const destructive = all.filter((r) => r.action === "delete" || r.action === "replace");
    expect(destructive).toHaveLength(500);
    for (const r of destructive) expect(listed).toContain(r.address);
    const destroysDiffed = destructive.filter((r) => r.action === "delete" && diffed.has(r.address)).length;
    const replacesDiffed = destructive.filter((r) => r.action === "replace" && diffed.has(r.address)).length;
    expect(destroysDiffed).toBeGreaterThan(100);
    expect(replacesDiffed === 0 || destroysDiffed === 300).toBe(true);
    expect(text).toContain("**destroy** (300)\n");
    expect(text).toContain("**replace** (200)\n");
    if (destroysDiffed < 300) expect(text).toContain(`_${300 - destroysDiffed} more without their diff here:_`);
    expect(text).toContain(replacesDiffed ? `_${200 - replacesDiffed} more without their diff here:_` : "**replace** (200)\n\n_These 200 without their diff here:_\n\n- 🟠 ± `aws_instance.replace_0[0]`\n");
    // updates and creates only once every destroy and replace has its diff; none fit here
    expect(all.filter((r) => (r.action === "update" || r.action === "create") && listed.has(r.address))).toEqual([]);
    expect(text).not.toContain("**update in place**");
    // what is listed is whole: one diff per resource listed with one
    expect((text.match(/^```diff$/gm) ?? []).length).toBe(diffed.size);

    // what is not listed, counted by action and type, adds up to the rest
    const last = parts[2]!;
    expect(last).toContain(`${all.length - listed.size} more resource changes are not listed here: they are counted below by type.`);
    expect(last).toContain(`Every destroy and replace is listed above, ${500 - diffed.size} of them without their diff.`);
    const rows = tableRows(last);
    const expected = new Map<string, number>();
    const label: Record<string, string> = { update: "update in place", create: "create" };
    expect(rows.length).toBe(7);
    for (const r of all.filter((r) => !listed.has(r.address))) expected.set(`${label[r.action]}|${r.type}`, (expected.get(`${label[r.action]}|${r.type}`) ?? 0) + 1);
    expect(new Map(rows.map(([action, type, count]) => [`${action}|${type}`, Number(count)]))).toEqual(expected);
    expect(rows.reduce((n, row) => n + Number(row[2]), 0)).toBe(all.length - listed.size);
    expect(last).toContain(`The [full plan](${RUN_URL}) is on the run page.`);
    // the table ends before the footer's next steps, so they do not become a row
    expect(last).toMatch(/\| \d+ \|\n\n\*\*Next:\*\*/);
  });

  test("short diffs: every destroy and replace with its diff, then as many updates as fit, whole", () => {
    const small = (r: ResourceChange): ResourceChange => ({ ...r, before: r.before && { name: (r.before as { name: string }).name }, after: r.after && { name: (r.after as { name: string }).name, v: 2 } });
    const big = project("services", { delete: 300, replace: 200, update: 4500, create: 5000 });
    const list = big.changes!.resources.map(small);
    const parts = renderPlanComment(t, report([{ ...big, changes: { resources: list, counts: countChanges(list) } }]), { maxParts: 3 });
    expect(parts).toHaveLength(3);
    for (const part of parts) expect(structure(part)).toEqual({ openFence: false, details: 0, negative: false });
    const text = parts.join("\n");
    const diffed = withDiff(text);
    for (const r of list.filter((r) => r.action === "delete" || r.action === "replace")) expect(diffed).toContain(r.address);
    expect(text).not.toContain("without their diff here");
    const updates = list.filter((r) => r.action === "update" && diffed.has(r.address)).length;
    expect(updates).toBeGreaterThan(100);
    expect(text).toContain(`**update in place** (4500; ${updates} listed here, the rest counted below)`);
    expect(tableRows(parts[2]!).reduce((n, row) => n + Number(row[2]), 0)).toBe(10_000 - diffed.size);
  });

  test("destroys and replaces beyond 3 parts: as many diffs as fit, then every other address listed without its diff", () => {
    const big = project("services", { delete: 2500, replace: 1500, update: 3000, create: 3000 });
    const all = big.changes!.resources;
    const parts = renderPlanComment(t, report([big]), { maxParts: 3 });
    expect(parts).toHaveLength(3);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
      expect(structure(part)).toEqual({ openFence: false, details: 0, negative: false });
    }
    const text = parts.join("\n");
    const listed = addressesIn(text);
    for (const r of all.filter((r) => r.action === "delete" || r.action === "replace")) expect(listed).toContain(r.address);
    // destroys keep their diffs first; what does not fit is a compact list
    const diffs = (text.match(/^```diff$/gm) ?? []).length;
    expect(diffs).toBeGreaterThan(0);
    expect(text).toContain(`_${2500 - diffs} more without their diff here:_`);
    expect(text).toContain("_These 1500 without their diff here:_");
    expect(text).toMatch(/^- 🔴 - `aws_s3_bucket\.delete_\d+\[\d+\]`$/m);
    // no update or create is listed; all are counted
    const rows = tableRows(parts[2]!);
    expect(rows.reduce((n, row) => n + Number(row[2]), 0)).toBe(6000);
    expect(parts[2]).toContain(`Every destroy and replace is listed above, ${4000 - diffs} of them without their diff.`);
  });

  test("several projects: the table names the project; without a run page link it says where the full plan is", () => {
    const parts = renderPlanComment(t, report([project("network", { delete: 40, update: 2000 }, "module.net."), project("apps", { replace: 30, create: 3000 }, "module.app.")], null), { maxParts: 2 });
    expect(parts).toHaveLength(2);
    const text = parts.join("\n");
    const listed = addressesIn(text);
    expect([...listed].filter((a) => /\.(delete|replace)_/.test(a))).toHaveLength(70);
    const rows = tableRows(parts[1]!);
    expect(parts[1]).toContain("| project | action | resource type | count |");
    expect(rows.reduce((n, row) => n + Number(row[3]), 0)).toBe(5070 - listed.size);
    expect(new Set(rows.map((r) => r[0]))).toEqual(new Set(["network", "apps"]));
    expect(parts[1]).toContain("The full plan is on this run's page in plangate's dashboard, or run `plangate plan` locally.");
    expect(text).not.toContain("[full plan]");
  });

  test("one part: the summary and every destroyed address still fit", () => {
    const parts = renderPlanComment(t, report([project("services", { delete: 300, replace: 200, update: 4500, create: 5000 })]), { maxParts: 1 });
    expect(parts).toHaveLength(1);
    expect(parts[0]!.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
    expect(structure(parts[0]!)).toEqual({ openFence: false, details: 0, negative: false });
    expect([...addressesIn(parts[0]!)].filter((a) => /\.(delete|replace)_/.test(a))).toHaveLength(500);
    expect(parts[0]).not.toContain("part 1 of");
  });

  test("a plan that fits is laid out whole, with no summary", () => {
    const parts = renderPlanComment(t, report([project("services", { delete: 3, replace: 2, update: 10, create: 10 })]), { maxParts: 3 });
    expect(parts).toHaveLength(1);
    expect(addressesIn(parts[0]!).size).toBe(25);
    expect(parts[0]).not.toContain("resource type");
    expect(parts[0]).not.toContain("listed here");
  });
});

describe("a PR of thousands of projects", () => {
  test("2,000 projects: the comment is still written; its table keeps failures and destroys first and counts the rest", () => {
    const projects: ProjectResult[] = Array.from({ length: 2000 }, (_, i) => project(`services/team-${String(i).padStart(4, "0")}`, { create: 1 }));
    projects[1500] = { name: "services/broken", workspace: "default", status: "failed", failure: { tool: "terraform", stage: "plan", message: "terraform plan failed", output: "Error: boom" } };
    projects[1999] = project("services/last-destroys", { delete: 2 });
    const parts = renderPlanComment(t, report(projects));
    expect(parts.length).toBeLessThanOrEqual(3);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
    const first = asShown(parts[0]!);
    // The failure and the destroying project are in the table although they come last in plan order.
    expect(first).toContain("| `services/broken` | `default` | ❌");
    expect(first).toMatch(/\| `services\/last-destroys` \| `default` \| [^|]+ \| 0 \| 0 \| 2 \| 0 \|/);
    const more = /(\d+) more projects with no failure and nothing to destroy are not listed here: \[run details\]\(https:\/\/plangate\.example\.com\/runs\/42/.exec(first);
    expect(more).not.toBeNull();
    const rows = first.split("\n").filter((l) => l.startsWith("| `services/"));
    expect(rows.length + Number(more![1])).toBe(2000);
    // The title still counts every project's changes.
    expect(first).toContain("plangate plan for `0123456`");
  });
});
