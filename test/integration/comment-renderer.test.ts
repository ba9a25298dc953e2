import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parsePlanChanges } from "../../src/plans/changes.js";
import { CommentRenderer } from "../../src/render/comment-renderer.js";
import { renderPlanComment } from "../../src/render/plan-comment.js";
import type { PlanReport } from "../../src/render/plan-report.js";
import { loadTemplates } from "../../src/render/templates.js";
import { engineTest } from "../support/app-harness.js";
import { realPlanJson } from "../support/terraform-plans.js";

/** The renderer's thread as plangate runs it: the build `npm test` makes first (bin/ensure-build.js). */
const THREAD = new URL("../../dist/render/render-thread.js", import.meta.url);

const BEFORE = `
variable "secret" {
  type      = string
  sensitive = true
  default   = "hunter2-old"
}
resource "terraform_data" "doomed" {
  count = 40
  input = "bye-\${count.index}"
}
resource "terraform_data" "secret" { input = var.secret }
resource "terraform_data" "proto" {
  input = { "__proto__" = { hidden = "before" }, other = "shown" }
}
`;

/** Creates, destroys, a sensitive value, unknowns and an update under a map key named "__proto__": three parts at the default limit. */
const AFTER = `
variable "secret" {
  type      = string
  sensitive = true
  default   = "hunter2-new"
}
resource "terraform_data" "secret" { input = var.secret }
resource "terraform_data" "proto" {
  input = { "__proto__" = { hidden = "from-the-reviewer" }, other = "shown" }
}
resource "terraform_data" "many" {
  count = 1500
  input = { index = count.index, name = "item-\${count.index}", note = "\${count.index % 2 == 0 ? "even" : "odd"}" }
}
`;

const report = (planJson: unknown): PlanReport => ({
  repo: "o/r",
  sha: "0123456789abcdef0123456789abcdef01234567",
  runUrl: "https://plangate.example.com/runs/7?expires=1&token=t",
  applyModes: ["on_merge"],
  projects: [{ name: "app", workspace: "default", status: "succeeded", changes: parsePlanChanges(planJson) }],
});

describe("rendering a plan comment on the renderer's own thread", () => {
  engineTest("the thread renders exactly what the calling thread renders: every part, the secret masked, the __proto__ key shown", async () => {
    const planned = report(realPlanJson(AFTER, BEFORE));
    const renderer = new CommentRenderer(await loadTemplates(), undefined, THREAD);
    try {
      expect(renderer.threaded).toBe(true);
      const onThread = await renderer.render(planned, { maxParts: 3 });
      expect(onThread).toEqual(renderPlanComment(await loadTemplates(), planned, { maxParts: 3 }));
      expect(onThread).toHaveLength(3);
      const body = onThread.join("\n");
      expect(body).toContain("__proto__");
      expect(body).toContain("from-the-reviewer");
      expect(body).not.toContain("hunter2");
      expect(body).toContain("terraform_data.doomed[39]");
    } finally {
      await renderer.close();
    }
  });

  engineTest("the thread uses the operator's templates (PLANGATE_TEMPLATES_DIR), and a failing template fails that render only", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-templates-"));
    writeFileSync(path.join(dir, "plan-footer.hbs"), "Rendered with the operator's footer.\n");
    const planned = report(realPlanJson('resource "terraform_data" "one" { input = "x" }\n'));
    const renderer = new CommentRenderer(await loadTemplates(dir), dir, THREAD);
    try {
      expect((await renderer.render(planned)).join("\n")).toContain("Rendered with the operator's footer.");
      writeFileSync(path.join(dir, "plan-header.hbs"), "{{#each}}{{/each}}\n");
      const broken = new CommentRenderer(await loadTemplates(), dir, THREAD);
      try {
        await expect(broken.render(planned)).rejects.toThrow(/each/i);
        // The thread is still there for the next comment.
        await expect(broken.render(planned)).rejects.toThrow(/each/i);
        expect(broken.threaded).toBe(true);
      } finally {
        await broken.close();
      }
      expect((await renderer.render(planned)).join("\n")).toContain("Rendered with the operator's footer.");
    } finally {
      await renderer.close();
    }
  });

  test("without the thread's script (the sources run directly) it renders on the calling thread", async () => {
    const templates = await loadTemplates();
    const renderer = new CommentRenderer(templates, undefined, new URL("./no-such-render-thread.js", import.meta.url));
    const planned: PlanReport = { repo: "o/r", sha: "0".repeat(40), projects: [{ name: "app", workspace: "default", status: "failed", failure: { stage: "plan", message: "terraform plan failed" } }] };
    expect(renderer.threaded).toBe(false);
    expect(await renderer.render(planned)).toEqual(renderPlanComment(templates, planned));
  });
});
