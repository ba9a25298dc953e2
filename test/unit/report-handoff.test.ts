import type { PlanChanges } from "../../src/plans/changes.js";
import { ReportHandoff } from "../../src/worker/plan/report-handoff.js";

/**
 * What a plan's last project job hands the group's report job in the same
 * process: taken once, by that group's report only; a report job that finds
 * nothing (another process ran it, or it came late) reads everything itself.
 */
const stored = (id: number) => ({ known: new Map([[id, { counts: { add: 1, change: 0, destroy: 0, replace: 0 }, resources: [] } as unknown as PlanChanges]]) });

describe("ReportHandoff", () => {
  it("hands a group's report what its last run stored, once", () => {
    const handoff = new ReportHandoff();
    const handed = stored(7);
    handoff.put(1, handed);
    expect(handoff.take(2)).toEqual({});
    expect(handoff.take(1)).toBe(handed);
    expect(handoff.take(1)).toEqual({});
  });

  it("keeps nothing past a minute: a late report reads it all itself", () => {
    let now = 0;
    const handoff = new ReportHandoff(() => now);
    handoff.put(1, stored(7));
    now = 61_000;
    expect(handoff.take(1)).toEqual({});
    // An entry nobody took is dropped by the next hand-off.
    handoff.put(2, stored(8));
    now = 62_000;
    handoff.put(3, stored(9));
    expect(handoff.take(2).known?.has(8)).toBe(true);
  });

  it("keeps only the last groups handed: the reports of the others, run by other processes, read it all themselves", () => {
    const handoff = new ReportHandoff();
    for (let group = 1; group <= 40; group++) handoff.put(group, stored(group));
    expect(handoff.take(1)).toEqual({});
    expect(handoff.take(40).known?.has(40)).toBe(true);
  });
});
