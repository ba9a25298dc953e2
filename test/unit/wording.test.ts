import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { cdktf } from "../../src/engines/cdktf-engine.js";
import { failureMessage } from "../../src/engines/terraform.js";
import { terraform } from "../../src/engines/terraform-engine.js";
import { tofu } from "../../src/engines/tofu-engine.js";
import type { ChangeAction } from "../../src/plans/changes.js";
import { renderPlanComment } from "../../src/render/plan-comment.js";
import { actionLabels, resultText, type ProjectResult } from "../../src/render/plan-report.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";
import { dashboardText, type DashboardTextKind } from "../../src/web/dashboard-auth.js";

/** Wording that code used to build, now in templates/: the default words, and an operator's override taking effect. */

let t: Templates;
beforeAll(async () => {
  t = await loadTemplates();
});

describe("action labels (templates/action-label.hbs)", () => {
  test("every action has its words, and changes made outside terraform too", () => {
    expect(actionLabels(t)).toEqual({
      delete: "destroy",
      replace: "replace",
      update: "update in place",
      create: "create",
      move: "move",
      import: "import",
      forget: "forget (removed from state, not destroyed)",
      read: "read (data sources)",
      drift: "changed outside terraform",
    });
  });

  test("an operator's override words the plan's headings", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-overrides-"));
    try {
      writeFileSync(path.join(dir, "action-label.hbs"), '{{#if (eq action "delete")}}supprimer{{else}}{{action}}{{/if}}\n');
      expect(actionLabels(await loadTemplates(dir)).delete).toBe("supprimer");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a project's result cell (templates/plan-result.hbs)", () => {
  const counts = { add: 0, change: 0, destroy: 0, replace: 0 };
  test.each<[string, ProjectResult]>([
    ["✅ planned", { name: "a", workspace: "default", status: "succeeded", changes: { resources: [], counts: { ...counts, add: 1 } } }],
    ["✅ no changes", { name: "a", workspace: "default", status: "succeeded", changes: { resources: [], counts } }],
    ["❌ failed", { name: "a", workspace: "default", status: "failed", failure: { stage: "plan", message: "x" } }],
    ["❌ policy", { name: "a", workspace: "default", status: "failed", failure: { stage: "policy", message: "x" } }],
  ])("%s", (text, project) => {
    expect(resultText(t, project)).toBe(text);
  });
});

describe("the dashboard's titles and sentences (templates/dashboard-text.hbs)", () => {
  test.each<[DashboardTextKind, object, string]>([
    ["runs", {}, "Runs"],
    ["locks", {}, "Locks"],
    ["audit", {}, "Audit log"],
    ["drift", {}, "Drift"],
    ["log-in", {}, "Log in"],
    ["unconfigured", {}, "Dashboard not configured"],
    ["login-failed", {}, "Login failed"],
    ["refused", {}, "Refused"],
    ["login-unverified", {}, "The login could not be verified (it expired or did not start here). Start again."],
    ["login-not-completed", { error: "GitHub refused the login code: bad_verification_code" }, "GitHub did not complete the login: GitHub refused the login code: bad_verification_code"],
    ["form-not-ours", {}, "This form was not sent from a page of this dashboard (its CSRF token is missing or wrong). Reload the page and try again."],
    ["log-in-first", {}, "Log in first."],
    ["permission-unconfirmed", { repo: "o/r", error: "HTTP 401" }, "GitHub did not confirm your permission on o/r: HTTP 401. Log in again."],
    ["release-needs-write", { repo: "o/r" }, "Releasing a lock of o/r needs write permission on it."],
  ])("%s", (kind, data, text) => {
    expect(dashboardText(t)(kind, data)).toBe(text);
  });

  test("values come out as written: the page that shows them escapes them", () => {
    expect(dashboardText(t)("release-needs-write", { repo: "<img src=x> @acme/x" })).toBe("Releasing a lock of <img src=x> @acme/x needs write permission on it.");
  });
});

describe("a failed step's heading (templates/failure-title.hbs): the engine's tool, never terraform by default", () => {
  const heading = (failure: NonNullable<ProjectResult["failure"]>) => {
    const body = renderPlanComment(t, { repo: "o/r", sha: "0".repeat(40), projects: [{ name: "app", workspace: "default", status: "failed", failure: { ...failure, output: "Error: x" } }] }).join("\n");
    return /^\*\*(.*)$/m.exec(body)?.[1];
  };
  test.each<[string, NonNullable<ProjectResult["failure"]>, string]>([
    ["terraform", { tool: "terraform", stage: "plan", message: "terraform plan failed" }, "terraform plan failed**"],
    ["an OpenTofu project", { tool: "tofu", stage: "init", message: "tofu init failed: killed by signal SIGKILL" }, "tofu init failed: killed by signal SIGKILL**"],
    ["an OpenTofu project that timed out", { tool: "tofu", stage: "plan", message: "timed out after 30 min (PLANGATE_JOB_TIMEOUT)", timedOut: true }, "tofu plan failed (timed out after 30 min (PLANGATE_JOB_TIMEOUT))**"],
    ["a cdktf synth", { tool: "cdktf", stage: "synth", message: "synth failed (exit 3)" }, "cdktf synth failed**: synth failed (exit 3)"],
    ["a cdktf program's dependencies", { tool: "cdktf", stage: "install", message: "npm install failed" }, "installing the cdktf program&#x27;s dependencies failed**"], // escaped where plan-error shows it
    ["a run stored before failures named their tool", { stage: "apply", message: "terraform apply failed" }, "apply failed**"],
  ])("%s", (_, failure, text) => {
    expect(heading(failure)).toBe(text);
  });

  test("the one-line reason names the engine's tool (failureMessage)", () => {
    const failure = { stage: "plan", timedOut: false, problems: ["exceeded PLANGATE_SANDBOX_PIDS (512)"] };
    expect(failureMessage({ ...failure, tool: tofu.tool })).toBe("tofu plan failed: exceeded PLANGATE_SANDBOX_PIDS (512)");
    expect(failureMessage({ ...failure, tool: terraform.tool, problems: [] })).toBe("terraform plan failed");
    expect(failureMessage({ ...failure, tool: cdktf.tool, timedOut: true }, "timed out after 1 min")).toBe("timed out after 1 min: exceeded PLANGATE_SANDBOX_PIDS (512)");
  });
});
