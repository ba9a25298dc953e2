import { markerLine, PLAN_MARKER } from "../github/markers.js";
import type { ChangeAction } from "../plans/changes.js";
import { fitTable } from "./fit-table.js";
import { ACTION_ORDER, reportView, type ActionLabels, type PlanReport } from "./plan-report.js";
import { ADDRESS, destructive, PlanSummary, SHOWN, type Laid } from "./plan-summary.js";
import { projectSection, type Item } from "./project-section.js";
import { remembered } from "./remembered.js";
import type { Templates } from "./templates.js";
import { GITHUB_COMMENT_LIMIT } from "../github/limits.js";

/** Parts of the plan comment when the caller sets none (PLANGATE_MAX_COMMENTS in the server). */
export const DEFAULT_MAX_PARTS = 3;

export interface SplitOptions {
  limit?: number;
  maxParts?: number;
}

/**
 * Renders the plan comment as one or more parts, each within GitHub's limit
 * and valid markdown on its own; splits only between items (resources).
 * When the whole plan needs more than `maxParts` parts, every destroy and
 * replace keeps its diff first (or, when even those do not fit, its address),
 * then as many other changes as fit, and the rest is counted by project,
 * action and resource type with a link to the run page.
 */
export function renderPlanComment(t: Templates, report: PlanReport, options: SplitOptions = {}): string[] {
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
  const summary = new PlanSummary(t, view.labels, laid, items, budget, report.runUrl, view.projects.length > 1);
  const layout = new Layout(t, view.labels, laid, items, budget, summary);

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
    // Largest k whose layout fits: `lo` always fits (or is 0), `hi` never does.
    let lo = 0;
    let hi = over < 0 ? steps.length : over + 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (layout.fits(layout.states(steps, mid), maxParts)) lo = mid;
      else hi = mid;
    }
    bodies = layout.pack(layout.states(steps, lo));
    // Only when even the headings and the summary alone need more parts (thousands of projects).
    if (bodies.length > maxParts) bodies = [...bodies.slice(0, maxParts - 1), summary.text(layout.states(steps, 0))];
  }
  return bodies.map((body, i) => header(i + 1, bodies.length) + body + footer(i === bodies.length - 1));
}

/** An item moved to a state; applied in order, the first k steps give a layout. */
interface Step {
  index: number;
  state: number;
}

const ACTION_RANK = ACTION_ORDER;

/**
 * The order in which items earn room: every destroy and replace listed, then
 * their diffs, then outputs, then the other changes by action (update, create,
 * …), then what changed outside terraform. Within a step, plan order.
 */
function priorities(items: Item[]): Step[] {
  // By action in listing order, then plan order: a bucket per action, filled in plan order (an item without an action first).
  const byRank = (pick: (item: Item) => boolean, state: number) => {
    const buckets: Step[][] = [[], ...ACTION_RANK.map(() => [])];
    items.forEach((item, index) => {
      if (pick(item)) buckets[ACTION_RANK.indexOf(item.action!) + 1]!.push({ index, state });
    });
    return buckets.flat();
  };
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
    private readonly summary: PlanSummary,
  ) {}

  private readonly retitles = new Map<Item, Map<number, string>>();
  private readonly addressLines = new Map<string, string>();

  /** Item states after the first `k` steps: resources and outputs left out, everything else kept. */
  states(steps: Step[], k: number): Uint8Array {
    const states = new Uint8Array(this.items.length);
    this.items.forEach((item, i) => {
      if (!item.resources && !item.outputs) states[i] = SHOWN;
    });
    for (let s = 0; s < k; s++) states[steps[s]!.index] = steps[s]!.state;
    return states;
  }

  /** The parts' bodies; the summary of what is left out closes the last one. */
  pack(states: Uint8Array): string[] {
    const { parts, current, length } = this.place(states, true);
    const summary = this.summary.text(states);
    if (summary) {
      if (length && length + summary.length > this.budget) parts.push(current.splice(0));
      current.push(summary);
    }
    parts.push(current);
    return parts.map((p) => p.join(""));
  }

  /**
   * Whether `pack(states)` gives at most `maxParts` parts. The search for the
   * largest layout that fits asks this a dozen times, and a summary of
   * hundreds of projects is long: its length is asked only when the count
   * hangs on it (the summary adds a part at most), not where its bound
   * decides (it is never longer than half a part or its shortest form, the
   * note without rows), and is then measured row by row (PlanSummary).
   */
  fits(states: Uint8Array, maxParts: number): boolean {
    const { parts, length } = this.place(states, false);
    const count = parts.length + 1;
    if (count !== maxParts) return count < maxParts;
    if (!length) return true;
    const tally = this.summary.tally(states);
    if (!tally) return true;
    const room = this.budget - length;
    if (room >= this.budget / 2 && this.summary.shortest(tally) <= room) return true;
    return this.summary.length(tally) <= room;
  }

  /**
   * The items laid out in parts, but for the summary: the parts filled, the
   * one being filled and its length. `keep`: false when only the count and
   * lengths are needed (the parts are left empty).
   */
  private place(states: Uint8Array, keep: boolean): { parts: string[][]; current: string[]; length: number } {
    const parts: string[][] = [];
    let current: string[] = [];
    let length = 0;
    const put = (text: string) => {
      if (keep) current.push(text);
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
    return { parts, current, length };
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
        if (listed) pieces.push({ text: listed === total ? item.text : this.retitle(item, listed), glued: true });
        continue;
      }
      if (state === SHOWN) pieces.push({ text: item.text });
      else if (state === ADDRESS) {
        // A run of addresses after the diffs of the same action, under one line saying what they are.
        if (i === 0 || states[start + i - 1] !== ADDRESS || items[i - 1]!.action !== item.action) {
          let count = 0;
          for (let j = i; j < items.length && states[start + j] === ADDRESS && items[j]!.action === item.action; j++) count++;
          const shown = i > 0 && states[start + i - 1] === SHOWN && items[i - 1]!.action === item.action;
          pieces.push({ text: this.addressesOnly(count, shown, item.action!), glued: true });
        }
        const last = states[start + i + 1] !== ADDRESS || items[i + 1]?.action !== item.action;
        pieces.push({ text: last ? `${item.compact!}\n` : item.compact! });
      }
    }
    // Headings alone (no resource under them shown) say nothing.
    return pieces.some((p) => !p.glued) ? pieces : [];
  }

  /** A heading's text with `listed` of its resources listed; rendered once per heading and count (layouts are laid out a dozen times). */
  private retitle(item: Item, listed: number): string {
    return remembered(remembered(this.retitles, item, () => new Map<number, string>()), listed, () => item.retitle!(listed));
  }

  /** The line above a run of addresses shown without their diff; rendered once per count, action and `shown`. */
  private addressesOnly(count: number, shown: boolean, action: ChangeAction): string {
    return remembered(this.addressLines, `${count} ${shown} ${action}`, () => this.t.render("plan-addresses-only", { count, shown, label: this.labels[action] }));
  }
}
