import type { MarkedComments } from "../../github/github.js";
import type { PlanChanges } from "../../plans/changes.js";
import type { PlanReport } from "../../render/plan-report.js";

/** A group's comment rendered ahead (see renderAhead): used only for a report that shows the same. */
export interface RenderedAhead {
  report: PlanReport;
  bodies: Promise<string[]>;
}

/** What the job that finished a group's last run hands its report: changes it just stored, the PR's plan comments if it looked them up. */
export interface HandedToReport {
  known?: ReadonlyMap<number, PlanChanges>;
  comments?: Promise<MarkedComments | undefined>;
  ahead?: RenderedAhead;
}

/** How long, and how many, handed reports wait for a report job of this process to take them. */
const KEPT_MS = 60_000;
const KEPT_MAX = 16;

/**
 * A group's report runs as a job of its own (`report-plan`), so that the
 * project's queue moves on once the last run's result is stored. The project
 * job hands it, through this process's memory, what it already has at hand:
 * the changes it stored, the PR's comments it looked up, the comment rendered
 * ahead. A report job of another process (or after a restart) finds nothing
 * here and reads it all itself: what is handed is only ever a head start.
 * Nothing handed is kept past a minute or beyond the last few groups.
 */
export class ReportHandoff {
  private readonly waiting = new Map<number, { handed: HandedToReport; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  put(groupId: number, handed: HandedToReport): void {
    const now = this.now();
    for (const [id, entry] of this.waiting) if (now - entry.at > KEPT_MS || this.waiting.size >= KEPT_MAX) this.waiting.delete(id);
    this.waiting.set(groupId, { handed, at: now });
  }

  /** What was handed for the group, once; nothing when it went to another process or was dropped. */
  take(groupId: number): HandedToReport {
    const entry = this.waiting.get(groupId);
    this.waiting.delete(groupId);
    return entry && this.now() - entry.at <= KEPT_MS ? entry.handed : {};
  }
}
