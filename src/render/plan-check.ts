import type { CheckConclusion, CheckOutput } from "../github/github.js";
import { GITHUB_CHECK_TEXT_LIMIT, GITHUB_CHECK_TITLE_LIMIT } from "../github/limits.js";
import { clipText } from "../text/clip-text.js";
import type { ChangeAction } from "../plans/changes.js";
import { ACTION_ORDER, reportView, type PlanReport } from "./plan-report.js";
import { projectSection } from "./project-section.js";
import type { Templates } from "./templates.js";


/**
 * Every project's per-resource detail, whole resources only, within `limit`:
 * what does not fit is counted by action in one closing line that says
 * where the full plan is.
 */
function planDetail(t: Templates, report: PlanReport, limit: number): string {
  const view = reportView(t, report);
  const { labels } = view;
  const note = (left: { label: string; count: number; drift?: boolean }[]) =>
    t.render("check-plan-truncated", { omitted: left.reduce((n, l) => n + l.count, 0), left, runUrl: report.runUrl });
  const actions = ACTION_ORDER;
  const budget = limit - note([...actions.map((a) => ({ label: labels[a], count: 99_999 })), { label: labels.drift, count: 99_999, drift: true }]).length;
  const left = new Map<ChangeAction | "drift", number>();
  let text = "";
  let full = false;
  for (const project of view.projects) {
    const section = projectSection(t, project, Math.floor(budget / 2), labels);
    const open = section.open(false);
    let opened = false;
    section.items.forEach((item, i) => {
      if (!full) {
        // A heading goes only with the first resource under it.
        const need = (opened ? 0 : open.length) + item.text.length + (item.heading ? (section.items[i + 1]?.text.length ?? 0) : 0) + section.close.length;
        if (text.length + need <= budget) {
          if (!opened) text += open;
          opened = true;
          text += item.text;
          return;
        }
        full = true;
      }
      const key = item.drift ? "drift" : item.action;
      if (item.resources && key) left.set(key, (left.get(key) ?? 0) + item.resources);
    });
    if (opened) text += section.close;
  }
  if (!left.size) return text;
  const counted = [...actions, "drift" as const].filter((a) => left.has(a)).map((a) => (a === "drift" ? { label: labels.drift, count: left.get(a)!, drift: true } : { label: labels[a], count: left.get(a)! }));
  return text + note(counted);
}

/** The `plangate/plan` conclusion and output for a finished plan: the table as summary, the resources as text. */
export function renderPlanCheck(t: Templates, report: PlanReport, limit = GITHUB_CHECK_TEXT_LIMIT): { conclusion: CheckConclusion; output: CheckOutput } {
  const view = reportView(t, report);
  return {
    conclusion: view.failed ? "failure" : "success",
    output: {
      title: clipText(t.render("check-plan-title", view).trim(), GITHUB_CHECK_TITLE_LIMIT),
      summary: clipText(t.render("check-plan-summary", view), limit),
      text: planDetail(t, report, limit),
    },
  };
}
