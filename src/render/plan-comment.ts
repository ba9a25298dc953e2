import type { ResourceChange } from "../plans/changes.js";
import { attributeDiff, outputDiff } from "./attribute-diff.js";
import { ACTION_LABELS, reportView, type PlanReport, type ProjectResult } from "./plan-report.js";
import { fenceFor, type Templates } from "./templates.js";

/** GitHub rejects issue comments longer than this many characters. */
export const GITHUB_COMMENT_LIMIT = 65_536;
export const PLAN_COMMENT_MARKER = "plangate:plan";
export const DEFAULT_MAX_PARTS = 5;

export interface SplitOptions {
  limit?: number;
  maxParts?: number;
}

const BODY = "\u0000plangate-body\u0000";

interface Item {
  text: string;
  resources: number;
}

interface Section {
  open: (continued: boolean) => string;
  close: string;
  items: Item[];
}

const STAGE_TITLES: Record<string, string> = { install: "installing the cdktf program's dependencies failed", synth: "cdktf synth failed" };
const failureTitle = (stage: string) => STAGE_TITLES[stage] ?? `terraform ${stage} failed`;

/** Renders each project as a `<details>` section whose items (action headings, resources, errors) can be split. */
function projectSection(t: Templates, project: ProjectResult & { resultText: string }, maxItem: number): Section {
  const wrap = (continued: boolean) => t.render("plan-project", { ...project, continued, open: false, body: BODY }).split(BODY);
  const close = wrap(false)[1] ?? "";
  const items: Item[] = [];
  const add = (text: string, resources = 0) => items.push({ text: clip(text, maxItem), resources });
  const failure = project.failure;
  const wrapUp = () => ({ open: (continued: boolean) => wrap(continued)[0] ?? "", close, items });
  if (project.status === "failed" && failure && failure.stage !== "policy") {
    const output = failure.output?.trim();
    add(t.render("plan-error", { ...failure, title: failureTitle(failure.stage), output, fence: fenceFor(output ?? "") }));
    return wrapUp();
  }
  // A policy failure still shows the plan it judged.
  if (failure?.stage === "policy") add(t.render("plan-policy", failure));
  const changes = project.changes;
  if (!changes?.resources.length && !changes?.outputs?.length) add(t.render("plan-no-changes", project));
  const resource = (change: ResourceChange) => {
    const diff = attributeDiff(change);
    const replacePaths = change.replacePaths?.map((p) => (Array.isArray(p) ? p.join(".") : String(p)));
    add(t.render("plan-resource", { ...change, symbol: ACTION_LABELS[change.action].symbol, replacePaths, diff, fence: fenceFor(diff) }), 1);
  };
  let current: string | undefined;
  for (const change of changes?.resources ?? []) {
    if (change.action !== current) {
      current = change.action;
      const count = changes!.resources.filter((r) => r.action === current).length;
      add(t.render("plan-action", { label: ACTION_LABELS[change.action].label, count }));
    }
    resource(change);
  }
  if (changes?.outputs?.length) {
    const diff = outputDiff(changes.outputs);
    add(t.render("plan-outputs", { count: changes.outputs.length, diff, fence: fenceFor(diff) }));
  }
  if (changes?.drift?.length) {
    add(t.render("plan-drift", { count: changes.drift.length }));
    changes.drift.forEach(resource);
  }
  return wrapUp();
}

/** An item too big for any comment keeps its head, with balanced fences. */
function clip(item: string, max: number): string {
  if (item.length <= max) return item;
  const fence = /^(`{3,})/m.exec(item)?.[1];
  const note = `\n… (${item.length - max} characters cut: too large for a comment)\n`;
  const cut = item.slice(0, Math.max(0, max - note.length - 2 * (fence?.length ?? 0) - 4));
  const fencesInCut = fence ? (cut.match(new RegExp(`^${fence}`, "gm")) ?? []).length : 0;
  return fencesInCut % 2 === 1 ? `${cut}\n${fence}\n${note}` : `${cut}${note}`;
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
