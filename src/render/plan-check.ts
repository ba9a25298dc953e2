import type { CheckConclusion, CheckOutput } from "../github/github.js";
import type { ChangeAction } from "../plans/changes.js";
import { ACTION_LABELS, reportView, type PlanReport } from "./plan-report.js";
import { projectSection } from "./project-section.js";
import type { Templates } from "./templates.js";

/** GitHub's limit on a check run's output.summary and output.text. */
export const GITHUB_CHECK_TEXT_LIMIT = 65_535;

const CUT_NOTE = "\n\n… (cut to fit GitHub's check-run limit)";
const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;

/**
 * Markdown cut to `limit` characters at a line boundary, with whatever the
 * kept lines opened (a code fence, `<details>`) closed again, so the cut
 * never swallows the rest of the page into a code block.
 */
export function clipText(text: string, limit = GITHUB_CHECK_TEXT_LIMIT): string {
  if (text.length <= limit) return text;
  let fence: string | undefined;
  let details = 0;
  let kept = 0;
  let best = "";
  const closing = () => `${fence ? `\n${fence}` : ""}${"\n</details>".repeat(details)}${CUT_NOTE}`;
  for (const line of text.split("\n")) {
    const next = kept + line.length + 1;
    const marker = FENCE.exec(line);
    if (fence) {
      if (marker && marker[1]![0] === fence[0] && marker[1]!.length >= fence.length && !marker[2]!.trim()) fence = undefined;
    } else if (marker && !(marker[1]![0] === "`" && marker[2]!.includes("`"))) {
      fence = marker[1];
    } else {
      details += (line.match(/<details\b/gi) ?? []).length - (line.match(/<\/details>/gi) ?? []).length;
      details = Math.max(0, details);
    }
    const ending = closing();
    if (next + ending.length > limit) break;
    kept = next;
    best = text.slice(0, kept) + ending.slice(1);
  }
  return best || `${text.slice(0, Math.max(0, limit - CUT_NOTE.length))}${CUT_NOTE}`;
}

/**
 * Every project's per-resource detail, whole resources only, within `limit`:
 * what does not fit is counted by action in one closing line that says
 * where the full plan is.
 */
function planDetail(t: Templates, report: PlanReport, limit: number): string {
  const view = reportView(report);
  const note = (left: { label: string; count: number; drift?: boolean }[]) =>
    t.render("check-plan-truncated", { omitted: left.reduce((n, l) => n + l.count, 0), left, runUrl: report.runUrl });
  const actions = Object.keys(ACTION_LABELS) as ChangeAction[];
  const budget = limit - note([...actions.map((a) => ({ label: ACTION_LABELS[a].label, count: 99_999 })), { label: "", count: 99_999, drift: true }]).length;
  const left = new Map<ChangeAction | "drift", number>();
  let text = "";
  let full = false;
  for (const project of view.projects) {
    const section = projectSection(t, project, Math.floor(budget / 2));
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
  const counted = [...actions, "drift" as const].filter((a) => left.has(a)).map((a) => (a === "drift" ? { label: "", count: left.get(a)!, drift: true } : { label: ACTION_LABELS[a].label, count: left.get(a)! }));
  return text + note(counted);
}

/** The `plangate/plan` conclusion and output for a finished plan: the table as summary, the resources as text. */
export function renderPlanCheck(t: Templates, report: PlanReport, limit = GITHUB_CHECK_TEXT_LIMIT): { conclusion: CheckConclusion; output: CheckOutput } {
  const view = reportView(report);
  return {
    conclusion: view.failed ? "failure" : "success",
    output: {
      title: clipText(t.render("check-plan-title", view).trim(), 255),
      summary: clipText(t.render("check-plan-summary", view), limit),
      text: planDetail(t, report, limit),
    },
  };
}
