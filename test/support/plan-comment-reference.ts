/**
 * TEST CODE: a frozen copy of src/render/plan-comment.ts as it was at ec2a3ed,
 * before renderPlanComment was made cheaper for large reports. The
 * plan-comment-equivalence unit test asserts that the current renderer gives
 * exactly the strings this one gives. Do not change it to follow the renderer.
 */
import { markerLine, PLAN_MARKER } from "../../src/github/markers.js";
import type { ChangeAction } from "../../src/plans/changes.js";
import { ACTION_ORDER, reportView, type ActionLabels, type PlanReport } from "../../src/render/plan-report.js";
import { projectSection, type Item, type Section } from "../../src/render/project-section.js";
import type { Templates } from "../../src/render/templates.js";
import { GITHUB_COMMENT_LIMIT } from "../../src/github/limits.js";

/** Parts of the plan comment when the caller sets none (PLANGATE_MAX_COMMENTS in the server). */
const DEFAULT_MAX_PARTS = 3;

interface SplitOptions {
  limit?: number;
  maxParts?: number;
}

/** How much of a resource a layout shows: nothing (counted in the summary), its address alone, or its diff. */
const OMITTED = 0;
const ADDRESS = 1;
const SHOWN = 2;

/** A project's section and where its items start in the flat list a layout's states index. */
interface Laid {
  section: Section;
  name: string;
  start: number;
}

/**
 * Renders the plan comment as one or more parts, each within GitHub's limit
 * and valid markdown on its own; splits only between items (resources).
 * When the whole plan needs more than `maxParts` parts, every destroy and
 * replace keeps its diff first (or, when even those do not fit, its address),
 * then as many other changes as fit, and the rest is counted by project,
 * action and resource type with a link to the run page.
 */
export function referenceRenderPlanComment(t: Templates, report: PlanReport, options: SplitOptions = {}): string[] {
  const limit = options.limit ?? GITHUB_COMMENT_LIMIT;
  const maxParts = Math.max(1, options.maxParts ?? DEFAULT_MAX_PARTS);
  const view = fitTable(t, reportView(t, report), limit);
  const header = (part: number, partCount: number) =>
    t.render("plan-header", { ...view, marker: markerLine(PLAN_MARKER, part), part, partCount, first: part === 1, multipart: partCount > 1 });
  const footer = (last: boolean) => t.render("plan-footer", { ...view, last });

  const reserve = Math.max(header(1, 99).length, header(99, 99).length) + footer(true).length + 16;
  const budget = limit - reserve;
  if (budget < 1000) throw new Error(`comment limit ${limit} leaves no room for the plan`);

  const laid: Laid[] = [];
  const items: Item[] = [];
  for (const project of view.projects) {
    const section = projectSection(t, project, Math.floor(budget / 2), view.labels);
    laid.push({ section, name: project.name, start: items.length });
    items.push(...section.items);
  }
  const layout = new Layout(t, view.labels, laid, items, budget, report.runUrl, view.projects.length > 1);

  const steps = priorities(items);
  // The first step whose items alone outgrow every part: no layout including it fits, and
  // the diffs of the items after it are never rendered.
  let sum = 0;
  const over = steps.findIndex(({ index, state }) => {
    const item = items[index]!;
    sum += state === ADDRESS ? item.compact!.length : item.text.length - (item.compact?.length ?? 0);
    return sum > maxParts * budget;
  });
  let bodies = over < 0 ? layout.pack(new Uint8Array(items.length).fill(SHOWN)) : [];
  if (over >= 0 || bodies.length > maxParts) {
    const at = (k: number, countOnly = false) => layout.pack(layout.states(steps, k), countOnly);
    // Largest k whose layout fits: `lo` always fits (or is 0), `hi` never does.
    let lo = 0;
    let hi = over < 0 ? steps.length : over + 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (at(mid, true).length <= maxParts) lo = mid;
      else hi = mid;
    }
    bodies = at(lo);
    // Only when even the headings and the summary alone need more parts (thousands of projects).
    if (bodies.length > maxParts) bodies = [...bodies.slice(0, maxParts - 1), layout.summary(layout.states(steps, 0))];
  }
  return bodies.map((body, i) => header(i + 1, bodies.length) + body + footer(i === bodies.length - 1));
}

/**
 * The report view whose summary table takes at most a quarter of a comment:
 * all of it, else as many rows as fit (thousands of projects), found by halving.
 */
function fitTable(t: Templates, view: ReturnType<typeof reportView>, limit: number): ReturnType<typeof reportView> {
  const room = limit / 4;
  const fits = (rows: number) => t.render("plan-table", withTableOf(view, rows)).length <= room;
  if (fits(view.projects.length)) return view;
  let lo = 0; // fits (an empty table and the count)
  let hi = view.projects.length; // does not fit
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return withTableOf(view, lo);
}

/** An item moved to a state; applied in order, the first k steps give a layout. */
interface Step {
  index: number;
  state: number;
}

const ACTION_RANK = ACTION_ORDER;
const destructive = (item: Item) => !!item.compact;

/**
 * The order in which items earn room: every destroy and replace listed, then
 * their diffs, then outputs, then the other changes by action (update, create,
 * …), then what changed outside terraform. Within a step, plan order.
 */
function priorities(items: Item[]): Step[] {
  const byRank = (pick: (item: Item) => boolean, state: number) =>
    items
      .map((item, index) => ({ item, index }))
      .filter(({ item }) => pick(item))
      .sort((a, b) => ACTION_RANK.indexOf(a.item.action!) - ACTION_RANK.indexOf(b.item.action!) || a.index - b.index)
      .map(({ index }) => ({ index, state }));
  const resource = (item: Item) => item.resources > 0;
  return [
    ...byRank(destructive, ADDRESS),
    ...byRank(destructive, SHOWN),
    ...items.flatMap((item, index) => (item.outputs ? [{ index, state: SHOWN }] : [])),
    ...byRank((item) => resource(item) && !item.drift && !destructive(item), SHOWN),
    ...items.flatMap((item, index) => (resource(item) && item.drift ? [{ index, state: SHOWN }] : [])),
  ];
}

/** A piece of text placed whole; `glued` pieces go in the same part as the piece after them. */
interface Piece {
  text: string;
  glued?: boolean;
}

/** Packs a chosen subset of the items into parts of at most `budget` characters. */
class Layout {
  constructor(
    private readonly t: Templates,
    private readonly labels: ActionLabels,
    private readonly laid: Laid[],
    private readonly items: Item[],
    private readonly budget: number,
    private readonly runUrl: string | undefined,
    private readonly multiProject: boolean,
  ) {}

  /** Item states after the first `k` steps: resources and outputs left out, everything else kept. */
  states(steps: Step[], k: number): Uint8Array {
    const states = new Uint8Array(this.items.length);
    this.items.forEach((item, i) => {
      if (!item.resources && !item.outputs) states[i] = SHOWN;
    });
    for (let s = 0; s < k; s++) states[steps[s]!.index] = steps[s]!.state;
    return states;
  }

  /**
   * The parts' bodies; the summary of what is left out closes the last one.
   * `countOnly`: the bodies are left empty (the search for the largest layout
   * that fits asks only how many parts it takes).
   */
  pack(states: Uint8Array, countOnly = false): string[] {
    const parts: string[][] = [];
    let current: string[] = [];
    let length = 0;
    const put = (text: string) => {
      if (!countOnly) current.push(text);
      length += text.length;
    };
    const newPart = () => {
      parts.push(current);
      current = [];
      length = 0;
    };
    for (const project of this.laid) {
      const pieces = this.pieces(project, states);
      if (!pieces.length) continue;
      const { section } = project;
      const chain = (i: number) => {
        let n = 0;
        for (let j = i; j < pieces.length; j++) {
          n += pieces[j]!.text.length;
          if (!pieces[j]!.glued) break;
        }
        return n;
      };
      const open = section.open(false);
      if (length && length + open.length + chain(0) + section.close.length > this.budget) newPart();
      put(open);
      let placed = false;
      pieces.forEach((piece, i) => {
        if (placed && length + chain(i) + section.close.length > this.budget && !pieces[i - 1]?.glued) {
          put(section.close);
          newPart();
          put(section.open(true));
          placed = false;
        }
        put(piece.text);
        placed = true;
      });
      put(section.close);
    }
    const summary = this.summary(states);
    if (summary) {
      if (length && length + summary.length > this.budget) newPart();
      put(summary);
    }
    newPart();
    return parts.map((p) => p.join(""));
  }

  /** What a project shows in this layout; nothing when every resource of it is left out and it has nothing else to say. */
  private pieces({ section, start }: Laid, states: Uint8Array): Piece[] {
    const pieces: Piece[] = [];
    const { items } = section;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const state = states[start + i]!;
      if (item.heading) {
        let listed = 0;
        let total = 0;
        for (let j = i + 1; j < items.length && items[j]!.resources; j++, total++) if (states[start + j]) listed++;
        if (listed) pieces.push({ text: listed === total ? item.text : item.retitle!(listed), glued: true });
        continue;
      }
      if (state === SHOWN) pieces.push({ text: item.text });
      else if (state === ADDRESS) {
        // A run of addresses after the diffs of the same action, under one line saying what they are.
        if (i === 0 || states[start + i - 1] !== ADDRESS || items[i - 1]!.action !== item.action) {
          let count = 0;
          for (let j = i; j < items.length && states[start + j] === ADDRESS && items[j]!.action === item.action; j++) count++;
          const shown = i > 0 && states[start + i - 1] === SHOWN && items[i - 1]!.action === item.action;
          pieces.push({ text: this.t.render("plan-addresses-only", { count, shown, label: this.labels[item.action!] }), glued: true });
        }
        const last = states[start + i + 1] !== ADDRESS || items[i + 1]?.action !== item.action;
        pieces.push({ text: last ? `${item.compact!}\n` : item.compact! });
      }
    }
    // Headings alone (no resource under them shown) say nothing.
    return pieces.some((p) => !p.glued) ? pieces : [];
  }

  /** The closing note: what is not listed, counted by project, action and resource type, and where the full plan is. */
  summary(states: Uint8Array): string {
    type Row = { project: string; label: string; type: string; count: number; rank: number };
    const rows: Row[] = [];
    let omitted = 0;
    let addressOnly = 0;
    let destructiveTotal = 0;
    let destructiveListed = 0;
    // Rows by project name, label and resource type, without building a key per resource (a layout is counted a dozen times while the largest that fits is sought).
    const byProject = new Map<string, Map<string, Map<string, Row>>>();
    for (const { section, name, start } of this.laid) {
      const byLabel = byProject.get(name) ?? new Map<string, Map<string, Row>>();
      byProject.set(name, byLabel);
      section.items.forEach((item, i) => {
        if (!item.resources) return;
        const state = states[start + i]!;
        if (destructive(item)) {
          destructiveTotal++;
          if (state) destructiveListed++;
          if (state === ADDRESS) addressOnly++;
        }
        if (state) return;
        omitted++;
        const label = item.drift ? this.labels.drift : this.labels[item.action!];
        const type = item.type ?? "";
        let types = byLabel.get(label);
        if (!types) byLabel.set(label, (types = new Map()));
        let row = types.get(type);
        if (!row) {
          row = { project: name, label, type, count: 0, rank: item.drift ? ACTION_RANK.length : ACTION_RANK.indexOf(item.action!) };
          types.set(type, row);
          rows.push(row);
        }
        row.count++;
      });
    }
    if (!omitted && !addressOnly && states.every((s, i) => s || !this.items[i]!.outputs)) return "";
    const render = (shown: Row[]) => {
      const rest = rows.length - shown.length;
      const more = rest ? { types: rest, count: rows.slice(shown.length).reduce((n, r) => n + r.count, 0) } : undefined;
      const ordered = [...shown].sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0) || a.rank - b.rank || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
      return this.t.render("plan-truncated", {
        omitted,
        addressOnly,
        destroysListed: destructiveTotal > 0 && destructiveListed === destructiveTotal,
        rows: ordered,
        more,
        multiProject: this.multiProject,
        runUrl: this.runUrl,
      });
    };
    // Many types: the most frequent keep a row, the others share one, so the note stays well within a part.
    rows.sort((a, b) => b.count - a.count);
    let keep = rows.length;
    let text = render(rows);
    while (text.length > this.budget / 2 && keep > 0) {
      keep = Math.floor(keep / 2);
      text = render(rows.slice(0, keep));
    }
    return text;
  }
}

// withTableOf and tableRank from src/render/plan-report.ts at ec2a3ed, frozen with the rest.
type ReportView = ReturnType<typeof reportView>;

function tableRank(p: ReportView["projects"][number]): number {
  if (p.status === "failed") return 0;
  if (p.counts.destroy + p.counts.replace > 0) return 1;
  if (p.counts.add + p.counts.change > 0) return 2;
  return 3;
}

function withTableOf(view: ReportView, rows: number): ReportView {
  if (rows >= view.projects.length) return view;
  const kept = new Set(
    view.projects
      .map((p, i) => ({ p, i }))
      .sort((a, b) => tableRank(a.p) - tableRank(b.p) || a.i - b.i)
      .slice(0, rows)
      .map(({ i }) => i),
  );
  const tableRows = view.projects.filter((_, i) => kept.has(i));
  return { ...view, tableRows, tableMore: view.projects.length - tableRows.length };
}
