import type { PlanChanges } from "../../src/plans/changes.js";
import { sameReport, type PlanReport } from "../../src/render/plan-report.js";

const changes = (input: string): PlanChanges => ({
  counts: { add: 0, change: 1, destroy: 0, replace: 0 },
  resources: [{ address: "terraform_data.a", type: "terraform_data", name: "a", action: "update", before: { input: "old" }, after: { input } }],
} as unknown as PlanChanges);

const report = (over: Partial<PlanReport> = {}, projectChanges = [changes("new"), changes("other")]): PlanReport => ({
  repo: "o/r",
  sha: "a".repeat(40),
  runUrl: "https://plangate.example.com/runs/1?expires=1&token=t",
  applyModes: ["on_merge", "on_merge"],
  projects: [
    { name: "app", workspace: "default", status: "succeeded", changes: projectChanges[0] },
    { name: "net", workspace: "default", status: "succeeded", changes: projectChanges[1] },
  ],
  ...over,
});

describe("a comment rendered ahead is used only for a report that shows the same", () => {
  test("the same changes, by identity or read again from the database, make the same report", () => {
    const mine = changes("new");
    expect(sameReport(report({}, [mine, changes("other")]), report({}, [mine, changes("other")]))).toBe(true);
  });

  test("any difference outside the changes makes another report: a run that failed meanwhile, another link, rule changes", () => {
    const ahead = report();
    const failed = report();
    failed.projects[1] = { name: "net", workspace: "default", status: "failed", failure: { stage: "plan", message: "terraform plan failed", output: "Error" } };
    expect(sameReport(failed, ahead)).toBe(false);
    expect(sameReport(report({ runUrl: "https://plangate.example.com/runs/1?expires=2&token=u" }), ahead)).toBe(false);
    expect(sameReport(report({ ruleChanges: ["apply"] }), ahead)).toBe(false);
    expect(sameReport(report({ projects: ahead.projects.slice(0, 1) }), ahead)).toBe(false);
  });

  test("another project's changes read again with a different value make another report", () => {
    expect(sameReport(report({}, [changes("new"), changes("changed meanwhile")]), report())).toBe(false);
  });
});
