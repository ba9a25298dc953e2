import { readFileSync } from "node:fs";
import { parsePlanChanges } from "../../src/plans/changes.js";
import { GITHUB_COMMENT_LIMIT } from "../../src/github/limits.js";
import { renderPlanComment } from "../../src/render/plan-comment.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";
import { engineTest } from "../support/app-harness.js";
import { realPlanJson } from "../support/terraform-plans.js";

// The plan of the README's screenshot (bin/docs-screenshot.js takes it from the same files).
const BEFORE = readFileSync("test/fixtures/render/showcase/before.tf", "utf8");
const AFTER = readFileSync("test/fixtures/render/showcase/after.tf", "utf8");

let templates: Templates;
beforeAll(async () => {
  templates = await loadTemplates();
});

const render = (planJson: unknown) =>
  renderPlanComment(templates, { repo: "o/r", sha: "0123456789abcdef0123456789abcdef01234567", projects: [{ name: "app", workspace: "default", status: "succeeded", changes: parsePlanChanges(planJson) }] });

describe("rendering real terraform plans", () => {
  engineTest("create, update, replace, destroy, sensitive and unknown values", () => {
    const changes = parsePlanChanges(realPlanJson(AFTER, BEFORE));
    const byAddress = Object.fromEntries(changes.resources.map((r) => [r.address, r.action]));
    expect(byAddress).toEqual({
      "terraform_data.database": "replace",
      "terraform_data.dns": "create",
      "terraform_data.instance": "update",
      "terraform_data.legacy_queue": "delete",
      "terraform_data.password": "update",
      "terraform_data.user_data": "update",
    });
    expect(changes.counts).toEqual({ add: 1, change: 3, destroy: 1, replace: 1 });

    const parts = render(realPlanJson(AFTER, BEFORE));
    expect(parts).toHaveLength(1);
    const body = parts[0]!;
    // summary and banner
    expect(body).toContain("| `app` | `default` | ✅ planned | 1 | 3 | 1 | 1 |");
    expect(body).toContain("This plan **destroys or replaces 2 resources**");
    // nested objects diff at the changed key only
    expect(body).toMatch(/    tags = \{\n-     env = "staging"\n\+     env = "prod"\n      team = "infra"\n    \}\n-   type = "t2.micro"\n\+   type = "t3.large"\n/);
    // multi-line strings diff line by line
    expect(body).toMatch(/    apt-get update\n-   systemctl start app\n\+   systemctl restart app\n  EOT/);
    // replace names the attribute that forces it
    expect(body).toContain("`terraform_data.database`, replaced because of `triggers_replace`");
    // destroy shows the old attributes as removed
    expect(body).toMatch(/`terraform_data.legacy_queue`\n```diff\n- id = "[0-9a-f-]+"\n- input = "sqs"/);
    // unknown and sensitive values
    expect(body).toContain("+ input = (known after apply)");
    expect(body).toContain("input = (sensitive)");
    // terraform_data copies its sensitive input into an output it does not mark: still hidden
    expect(body).not.toMatch(/old-secret|new-secret/);
    // grouped by action, destroys first
    const order = ["**destroy**", "**replace**", "**update in place**", "**create**"].map((h) => body.indexOf(h));
    expect(order.every((pos, i) => pos > 0 && (i === 0 || pos > order[i - 1]!))).toBe(true);
  });

  engineTest("an import that also updates shows as both, with its diff, and counts as a change", () => {
    const config = `
import {
  to = terraform_data.adopted
  id = "adopted-1"
}
resource "terraform_data" "adopted" { input = "configured" }
import {
  to = terraform_data.as_is
  id = "as-is-1"
}
resource "terraform_data" "as_is" {}
`;
    const plan = realPlanJson(config);
    const changes = parsePlanChanges(plan);
    expect(changes.resources.map((r) => [r.address, r.action, r.imported])).toEqual([
      ["terraform_data.adopted", "update", { id: "adopted-1" }],
      ["terraform_data.as_is", "import", { id: "as-is-1" }],
    ]);
    // as terraform's "2 to import, 0 to add, 1 to change": the update is counted, the plain import is not
    expect(changes.counts).toEqual({ add: 0, change: 1, destroy: 0, replace: 0 });

    const body = render(plan)[0]!;
    expect(body).toContain("| `app` | `default` | ✅ planned | 0 | 1 | 0 | 0 |");
    expect(body).toMatch(/\*\*update in place\*\* \(1\)\n\n🟡 ~ `terraform_data.adopted` \(imported from `adopted-1` and updated\)\n```diff\n  id = "adopted-1"\n- input = null\n- output = null\n\+ input = "configured"\n\+ output = \(known after apply\)\n/);
    expect(body).toMatch(/\*\*import\*\* \(1\)\n\n🔵 ← `terraform_data.as_is` \(import id: `as-is-1`\)\n/);
  });

  engineTest('a map key named "__proto__" and its value are shown like any other key', () => {
    // A PR author's key that a plain JavaScript object would swallow as its prototype, hiding its value from the reviewer.
    const body = render(realPlanJson('resource "terraform_data" "m" {\n  input = { "__proto__" = { hidden = "from-the-reviewer" }, other = "shown" }\n}\n')).join("\n");
    expect(body).toContain("__proto__");
    expect(body).toContain("from-the-reviewer");
    expect(body).toContain("shown");
  });

  engineTest("no changes says so", () => {
    const config = 'resource "terraform_data" "a" { input = "x" }\n';
    const body = render(realPlanJson(config, config))[0]!;
    expect(body).toContain("| `app` | `default` | ✅ no changes | 0 | 0 | 0 | 0 |");
    expect(body).toContain("No changes. The infrastructure matches the configuration.");
  });

  engineTest("3,000 resource changes split into valid parts, nothing lost", () => {
    const plan = realPlanJson('resource "terraform_data" "many" {\n  count = 3000\n  input = "value-${count.index}"\n}\n');
    const report = { repo: "o/r", sha: "f".repeat(40), projects: [{ name: "big", workspace: "default", status: "succeeded" as const, changes: parsePlanChanges(plan) }] };
    const parts = renderPlanComment(templates, report, { maxParts: 100 });
    expect(parts.length).toBeGreaterThan(1);
    const seen = new Map<string, number>();
    parts.forEach((part, i) => {
      expect(part.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
      expect(part).toContain(`<!-- plangate:plan part=${i + 1} -->`);
      expect(part).toContain(`part ${i + 1} of ${parts.length}`);
      expect((part.match(/^```/gm) ?? []).length % 2).toBe(0);
      expect((part.match(/<details/g) ?? []).length).toBe((part.match(/<\/details>/g) ?? []).length);
      for (const m of part.matchAll(/`(terraform_data\.many\[\d+\])`/g)) seen.set(m[1]!, (seen.get(m[1]!) ?? 0) + 1);
    });
    expect(seen.size).toBe(3000);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);

    const capped = renderPlanComment(templates, report, { maxParts: 2 });
    expect(capped).toHaveLength(2);
    const shown = capped.join("").match(/`terraform_data\.many\[\d+\]`/g)?.length ?? 0;
    expect(capped[1]).toContain(`${3000 - shown} more resource changes are not listed here: they are counted below by type.`);
    expect(capped[1]).toContain(`| create | \`terraform_data\` | ${3000 - shown} |`);
    expect(capped[0]).toContain(`**create** (3000; ${shown} listed here, the rest counted below)`);
  });
});
