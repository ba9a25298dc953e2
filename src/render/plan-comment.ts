import { reportView, type PlanReport } from "./plan-report.js";
import { projectSection, type Item } from "./project-section.js";
import type { Templates } from "./templates.js";

/** GitHub rejects issue comments longer than this many characters. */
export const GITHUB_COMMENT_LIMIT = 65_536;
export const PLAN_COMMENT_MARKER = "plangate:plan";
export const DEFAULT_MAX_PARTS = 5;

export interface SplitOptions {
  limit?: number;
  maxParts?: number;
}

/**
 * Renders the plan comment as one or more parts, each within GitHub's limit
 * and valid markdown on its own; splits only between items (resources).
 */
export function renderPlanComment(t: Templates, report: PlanReport, options: SplitOptions = {}): string[] {
  const limit = options.limit ?? GITHUB_COMMENT_LIMIT;
  const maxParts = options.maxParts ?? DEFAULT_MAX_PARTS;
  const view = reportView(report);
  const header = (part: number, partCount: number) =>
    t.render("plan-header", { ...view, marker: `<!-- ${PLAN_COMMENT_MARKER} part=${part} -->`, part, partCount, first: part === 1, multipart: partCount > 1 });
  const footer = (last: boolean) => t.render("plan-footer", { ...view, last });
  const truncatedNote = (omitted: number) => t.render("plan-truncated", { omitted, runUrl: report.runUrl });

  const reserve = Math.max(header(1, 99).length, header(99, 99).length) + footer(true).length + truncatedNote(99_999).length + 16;
  const budget = limit - reserve;
  if (budget < 1000) throw new Error(`comment limit ${limit} leaves no room for the plan`);

  const bodies: Item[] = [];
  let current: Item = { text: "", resources: 0 };
  const startPart = (carry = "") => {
    bodies.push(current);
    current = { text: carry, resources: 0 };
  };
  for (const project of view.projects) {
    const section = projectSection(t, project, Math.floor(budget / 2));
    let open = section.open(false);
    const first = section.items[0]?.text.length ?? 0;
    if (current.text && current.text.length + open.length + first + section.close.length > budget) startPart();
    current.text += open;
    for (const item of section.items) {
      if (current.text.length + item.text.length + section.close.length > budget && !current.text.endsWith(open)) {
        current.text += section.close;
        open = section.open(true);
        startPart(open);
      }
      current.text += item.text;
      current.resources += item.resources;
    }
    current.text += section.close;
  }
  bodies.push(current);

  const shown = bodies.slice(0, maxParts).map((b) => b.text);
  const omitted = bodies.slice(maxParts).reduce((n, b) => n + b.resources, 0);
  if (bodies.length > maxParts) shown[shown.length - 1] += truncatedNote(omitted);
  return shown.map((body, i) => header(i + 1, shown.length) + body + footer(i === shown.length - 1));
}
