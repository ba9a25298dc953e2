import { readFileSync } from "node:fs";
import { configReference } from "../../bin/docs-config.js";
import { commentPage } from "../../bin/docs-screenshot.js";
import { ENGINES } from "../../src/engines/registry.js";
import { repoConfigJsonSchema } from "../../src/settings/repo-config.js";
import { SETTING_NAMES } from "../../src/settings/settings.js";

/**
 * The reference pages cannot drift from the code: docs/configuration.md is
 * what `npm run docs:config` renders from the schema, and every environment
 * setting plangate reads has a row in docs/operations.md's settings table.
 */

const schema = JSON.parse(JSON.stringify(repoConfigJsonSchema(ENGINES.names))) as { properties: Record<string, unknown> };

describe("docs/configuration.md", () => {
  test("is what npm run docs:config renders from the schema", () => {
    expect(readFileSync("docs/configuration.md", "utf8")).toBe(configReference(schema));
  });

  test("describes every key of .plangate.yml", () => {
    const page = readFileSync("docs/configuration.md", "utf8");
    const rows = page.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| key "));
    expect(rows.length).toBeGreaterThan(60);
    const undescribed = rows.filter((row) => row.split(/(?<!\\)\|/)[5]!.trim() === "");
    expect(undescribed).toEqual([]);
    for (const key of ["version", "projects[].approvals.destroy_required", "projects[].credentials.aws.plan_role_arn", "defaults.drift.schedule", "policies[].require_approvals", "apply_branches"]) {
      expect(page).toContain(`\`${key}\``);
    }
  });
});

describe("docs/operations.md", () => {
  test("has a settings-table row for every environment setting", () => {
    const page = readFileSync("docs/operations.md", "utf8");
    const start = page.indexOf("## Settings (environment)");
    expect(start).toBeGreaterThanOrEqual(0);
    const table = page.slice(start, page.indexOf("\n## ", start + 1));
    const firstCells = table
      .split("\n")
      .filter((l) => l.startsWith("| ") && l.includes("`"))
      .map((l) => l.split("|")[1]!);
    const missing = SETTING_NAMES.filter((name) => !firstCells.some((c) => c.includes(`\`${name}\``)));
    expect(missing).toEqual([]);
  });
});

describe("the plan-comment screenshot page (npm run docs:screenshot)", () => {
  test("shows a rendered plan comment: its summary table, caution banner and coloured diff", () => {
    const html = commentPage(readFileSync("test/fixtures/render/replace-and-destroy.md", "utf8"));
    expect(html).toContain("<th>project</th>");
    expect(html).toMatch(/<td><code>corpus<\/code><\/td>\s*<td><code>default<\/code><\/td>\s*<td>✅ planned<\/td>/);
    expect(html).toContain('class="markdown-alert markdown-alert-caution"');
    expect(html).toContain('<span class="pl-md">- input = "legacy"</span>');
    expect(html).toContain("<details open>");
    expect(html).not.toContain("[!CAUTION]");
  });
});
