import type { ChangeAction, ResourceChange } from "../plans/changes.js";
import { applyTimeText, provisionerCount } from "./apply-time-text.js";
import { attributeDiff, outputDiff } from "./attribute-diff.js";
import { ACTION_SYMBOLS, type ActionLabels, type ProjectResult } from "./plan-report.js";
import { fenceFor, type Templates } from "./templates.js";

/** One piece of a project's detail that is shown whole or not at all. */
export interface Item {
  text: string;
  /** Resources the item shows (1 for a resource, 0 for headings and errors). */
  resources: number;
  /** The resource's action, for counting what is left out. */
  action?: ChangeAction;
  /** A resource terraform found changed outside terraform (not part of the plan's changes). */
  drift?: boolean;
  /** A heading: shown only with the item after it. */
  heading?: boolean;
  /** A heading's text when only `listed` of the resources under it are listed. */
  retitle?: (listed: number) => string;
  /** The resource's type, for summarising what is left out. */
  type?: string;
  /** A destroy's or replace's address alone (no diff), for when its diff does not fit. */
  compact?: string;
  /** Outputs: shown or left out as a whole. */
  outputs?: boolean;
}

/** A project's `<details>` wrapper and its items; `open(true)` for a section continued from an earlier part. */
export interface Section {
  open: (continued: boolean) => string;
  close: string;
  items: Item[];
}

const BODY = "\u0000plangate-body\u0000";

/** The line above a failure's output: its title (in bold, templates/failure-title.hbs), with what the message adds (a timeout, a signal, a cap, a synth error). */
function failureHeading(t: Templates, failure: { tool?: string; stage: string; message: string; timedOut?: boolean }): { heading: string; headingRest?: string } {
  const title = t.render("failure-title", failure).trim();
  if (failure.timedOut) return { heading: `${title} (${failure.message})` };
  if (failure.message.startsWith(`${title}: `)) return { heading: failure.message };
  // A step of plangate's own making (a synth) says what went wrong after its title; a terraform step's message only repeats the title.
  return failure.stage === "synth" ? { heading: title, headingRest: failure.message } : { heading: title };
}

/** Renders each project as a `<details>` section whose items (action headings, resources, errors) can be split. */
export function projectSection(t: Templates, project: ProjectResult & { resultText: string; policies: unknown[] }, maxItem: number, labels: ActionLabels): Section {
  const wrap = (continued: boolean) => t.render("plan-project", { ...project, continued, open: false, body: BODY }).split(BODY);
  // Rendered when first asked for: a project whose every resource a large plan's layout leaves out shows no section.
  let wrapped: string[] | undefined;
  let continuedOpening: string | undefined;
  const items: Item[] = [];
  const add = (text: string | (() => string), more: Omit<Item, "text" | "resources"> & { resources?: number } = {}) => {
    if (typeof text === "string") return items.push({ resources: 0, ...more, text: clip(text, maxItem) });
    // A resource's diff (or a heading) is rendered when first read: a plan too large for the comment shows few of them.
    let rendered: string | undefined;
    return items.push(Object.defineProperty({ resources: 0, ...more } as Item, "text", { get: () => (rendered ??= clip(text(), maxItem)), enumerable: true }));
  };
  const failure = project.failure;
  // Asked again each time a layout is tried: rendered once.
  const open = (continued: boolean) => (continued ? (continuedOpening ??= wrap(true)[0] ?? "") : (wrapped ??= wrap(false))[0] ?? "");
  const wrapUp = (): Section => ({
    open,
    get close() {
      return (wrapped ??= wrap(false))[1] ?? "";
    },
    items,
  });
  if (project.status === "failed" && failure && failure.stage !== "policy") {
    const output = failure.output?.trim();
    add(t.render("plan-error", { ...failure, ...failureHeading(t, failure), output, fence: fenceFor(output ?? "") }));
    return wrapUp();
  }
  // A policy failure still shows the plan it judged; what the policies found comes first.
  if (failure?.stage === "policy" || project.policies.length) add(t.render("plan-policy", project));
  const changes = project.changes;
  // Code that runs at apply comes first, and is never left out for room (an item without resources always stays).
  if (changes?.applyTime?.length) {
    const text = applyTimeText(changes.applyTime);
    add(t.render("plan-apply-time", { count: provisionerCount(changes.applyTime), text, fence: fenceFor(text) }));
  }
  if (!changes?.resources.length && !changes?.outputs?.length) add(t.render("plan-no-changes", project));
  const resource = (change: ResourceChange, drift = false) => {
    const symbol = ACTION_SYMBOLS[change.action];
    const compact = !drift && (change.action === "delete" || change.action === "replace") ? t.render("plan-resource-address", { ...change, symbol }) : undefined;
    const text = () => {
      const diff = attributeDiff(change);
      const replacePaths = change.replacePaths?.map((p) => (Array.isArray(p) ? p.join(".") : String(p)));
      // What plan-resource shows, not the whole change (its values are in the diff already).
      const { address, previousAddress, imported, action } = change;
      return t.render("plan-resource", { address, previousAddress, imported, action, symbol, replacePaths, diff, fence: fenceFor(diff) });
    };
    add(text, { resources: 1, action: change.action, type: change.type, ...(compact ? { compact } : {}), ...(drift ? { drift } : {}) });
  };
  const counts = new Map<ChangeAction, number>();
  for (const change of changes?.resources ?? []) counts.set(change.action, (counts.get(change.action) ?? 0) + 1);
  let current: string | undefined;
  for (const change of changes?.resources ?? []) {
    if (change.action !== current) {
      current = change.action;
      const label = labels[change.action];
      const count = counts.get(change.action)!;
      add(() => t.render("plan-action", { label, count }), { heading: true, retitle: (listed) => t.render("plan-action", { label, count, listed, partial: listed < count }) });
    }
    resource(change);
  }
  if (changes?.outputs?.length) {
    const diff = outputDiff(changes.outputs);
    add(t.render("plan-outputs", { count: changes.outputs.length, diff, fence: fenceFor(diff) }), { outputs: true });
  }
  if (changes?.drift?.length) {
    const count = changes.drift.length;
    add(() => t.render("plan-drift", { count }), { heading: true, retitle: (listed) => t.render("plan-drift", { count, listed, partial: listed < count }) });
    changes.drift.forEach((change) => resource(change, true));
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
