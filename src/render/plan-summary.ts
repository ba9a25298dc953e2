import { ACTION_ORDER, type ActionLabels } from "./plan-report.js";
import type { Item, Section } from "./project-section.js";
import { remembered } from "./remembered.js";
import { rowSums } from "./row-sums.js";
import type { Templates } from "./templates.js";

/** How much of a resource a layout shows: nothing (counted in the summary), its address alone, or its diff. */
export const OMITTED = 0;
export const ADDRESS = 1;
export const SHOWN = 2;

/** A project's section and where its items start in the flat list a layout's states index. */
export interface Laid {
  section: Section;
  name: string;
  start: number;
}

/** A destroy or replace (the items that have an address-only form). */
export const destructive = (item: Item) => !!item.compact;

/** A summary row: resources of one project, action and type that a layout leaves out. */
interface Row {
  project: string;
  label: string;
  type: string;
  count: number;
  rank: number;
}

/** What the summary of a layout counts. */
export interface Tally {
  /** Most frequent first. */
  rows: Row[];
  omitted: number;
  addressOnly: number;
  destroysListed: boolean;
}

/**
 * The closing note of a plan comment whose layout leaves resources out: what
 * is not listed, counted by project, action and resource type, and where the
 * full plan is. Many types: the most frequent keep a row, the others share
 * one, so the note stays within half a part.
 */
export class PlanSummary {
  /** Each row's length (by project, label, type and count), when the templates are plangate's own (see fitted). */
  private readonly rowLengths?: Map<string, number>;
  private groups?: { of: Int32Array; rows: Omit<Row, "count">[] };

  constructor(
    private readonly t: Templates,
    private readonly labels: ActionLabels,
    private readonly laid: Laid[],
    private readonly items: Item[],
    private readonly budget: number,
    private readonly runUrl: string | undefined,
    private readonly multiProject: boolean,
  ) {
    if (t.builtIn?.("plan-truncated") && t.builtIn("plan-truncated-row")) this.rowLengths = new Map();
  }

  /** The note for a layout's item states; empty when it has nothing to say. */
  text(states: Uint8Array): string {
    const tally = this.tally(states);
    if (!tally) return "";
    const fitted = this.fitted(tally);
    return fitted.text ?? this.render(tally, fitted.keep);
  }

  /** The note's length for a tally, rendered only where its rows cannot be summed. */
  length(tally: Tally): number {
    const fitted = this.fitted(tally);
    return fitted.length ?? fitted.text!.length;
  }

  /** The shortest the note can be: no row, every type counted in one line. */
  shortest(tally: Tally): number {
    return this.render(tally, 0).length;
  }

  /** What the note counts; undefined when it has nothing to say (everything listed with its diff). */
  tally(states: Uint8Array): Tally | undefined {
    const groups = (this.groups ??= this.groupsOf());
    const counts = new Uint32Array(groups.rows.length);
    // Rows in the order their first resource left out comes, as the note has always listed equal counts.
    const order: number[] = [];
    let omitted = 0;
    let addressOnly = 0;
    let destructiveTotal = 0;
    let destructiveListed = 0;
    let outputsLeftOut = false;
    for (let i = 0; i < this.items.length; i++) {
      const item = this.items[i]!;
      const state = states[i]!;
      if (!state && item.outputs) outputsLeftOut = true;
      if (!item.resources) continue;
      if (destructive(item)) {
        destructiveTotal++;
        if (state) destructiveListed++;
        if (state === ADDRESS) addressOnly++;
      }
      if (state) continue;
      omitted++;
      const group = groups.of[i]!;
      if (!counts[group]) order.push(group);
      counts[group] = counts[group]! + 1;
    }
    if (!omitted && !addressOnly && !outputsLeftOut) return undefined;
    const rows = order.map((group) => ({ ...groups.rows[group]!, count: counts[group]! }));
    rows.sort((a, b) => b.count - a.count);
    return { rows, omitted, addressOnly, destroysListed: destructiveTotal > 0 && destructiveListed === destructiveTotal };
  }

  /** Each resource's row (by project name, label and resource type), found once for every layout counted. */
  private groupsOf(): { of: Int32Array; rows: Omit<Row, "count">[] } {
    const of = new Int32Array(this.items.length).fill(-1);
    const rows: Omit<Row, "count">[] = [];
    const byProject = new Map<string, Map<string, Map<string, number>>>();
    for (const { section, name, start } of this.laid) {
      const byLabel = byProject.get(name) ?? new Map<string, Map<string, number>>();
      byProject.set(name, byLabel);
      section.items.forEach((item, i) => {
        if (!item.resources) return;
        const label = item.drift ? this.labels.drift : this.labels[item.action!];
        const type = item.type ?? "";
        let types = byLabel.get(label);
        if (!types) byLabel.set(label, (types = new Map()));
        let group = types.get(type);
        if (group === undefined) {
          types.set(type, (group = rows.length));
          rows.push({ project: name, label, type, rank: item.drift ? ACTION_ORDER.length : ACTION_ORDER.indexOf(item.action!) });
        }
        of[start + i] = group;
      });
    }
    return { of, rows };
  }

  /** The note with the `keep` most frequent rows, the others sharing one; `shown`: rows rendered in their stead (see fitted). */
  private render({ rows, omitted, addressOnly, destroysListed }: Tally, keep: number, shown = rows.slice(0, keep)): string {
    const rest = rows.length - keep;
    const more = rest ? { types: rest, count: rows.slice(keep).reduce((n, r) => n + r.count, 0) } : undefined;
    const ordered = shown.sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0) || a.rank - b.rank || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
    return this.t.render("plan-truncated", { omitted, addressOnly, destroysListed, rows: ordered, more, multiProject: this.multiProject, runUrl: this.runUrl });
  }

  /**
   * How many rows the note keeps: all, else half as many, and so on, until it
   * is within half a part (or has none); with the note's text, or its length
   * alone where that was found without rendering it. With plangate's own
   * templates the note is its text around the rows plus a plan-truncated-row
   * per row, so its length is the note's with one row, less that row, plus
   * every row's; a row is rendered once, and a number of rows whose rows alone
   * outgrow half a part is passed over without rendering anything.
   */
  private fitted(tally: Tally): { keep: number; text?: string; length?: number } {
    const half = this.budget / 2;
    const { rows } = tally;
    let keep = rows.length;
    if (!this.rowLengths) {
      let text = this.render(tally, keep);
      while (text.length > half && keep > 0) {
        keep = Math.floor(keep / 2);
        text = this.render(tally, keep);
      }
      return { keep, text };
    }
    const sumOf = rowSums(half, (j) => this.rowLength(rows[j]!));
    for (;;) {
      if (keep === 0) return { keep, text: this.render(tally, 0) };
      const kept = sumOf(keep);
      if (kept !== undefined) {
        const length = this.render(tally, keep, [rows[0]!]).length - this.rowLength(rows[0]!) + kept;
        if (length <= half) return { keep, length };
      }
      keep = Math.floor(keep / 2);
    }
  }

  private rowLength(row: Row): number {
    const key = JSON.stringify([row.project, row.label, row.type, row.count]);
    return remembered(this.rowLengths!, key, () => this.t.render("plan-truncated-row", { ...row, multiProject: this.multiProject }).length);
  }
}
