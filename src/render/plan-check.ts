import type { CheckConclusion, CheckOutput } from "../github/github.js";
import { reportView, type PlanReport } from "./plan-report.js";
import type { Templates } from "./templates.js";

/** GitHub's limit on a check run's output.summary and output.text. */
export const GITHUB_CHECK_TEXT_LIMIT = 65_535;

export const clipText = (text: string, limit = GITHUB_CHECK_TEXT_LIMIT) =>
  text.length <= limit ? text : `${text.slice(0, limit - 60)}\n\n… (cut to fit GitHub's check-run limit)`;

/** The `plangate/plan` conclusion and output for a finished plan. */
export function renderPlanCheck(t: Templates, report: PlanReport): { conclusion: CheckConclusion; output: CheckOutput } {
  const view = reportView(report);
  return {
    conclusion: view.failed ? "failure" : "success",
    output: {
      title: clipText(t.render("check-plan-title", view).trim(), 255),
      summary: clipText(t.render("check-plan-summary", view)),
    },
  };
}
