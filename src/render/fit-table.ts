import { tableCuts, tableRanking, type ReportView } from "./plan-report.js";
import { rowSums } from "./row-sums.js";
import type { Templates } from "./templates.js";

/**
 * The report view whose summary table takes at most a quarter of a comment:
 * all of it, else as many rows as fit (thousands of projects), found by halving.
 */
export function fitTable(t: Templates, view: ReportView, limit: number): ReportView {
  const room = limit / 4;
  const cut = tableCuts(view);
  const fits = t.builtIn?.("plan-table") && t.builtIn("plan-table-row") ? fitsBySum(t, view, cut, room) : (rows: number) => t.render("plan-table", cut(rows)).length <= room;
  if (fits(view.projects.length)) return view;
  let lo = 0; // fits (an empty table and the count)
  let hi = view.projects.length; // does not fit
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return cut(lo);
}

/**
 * Whether the table of `rows` rows fits in `room`, told without rendering it:
 * plangate's own plan-table is its head and the line counting the projects
 * left out, with a plan-table-row per project in between, so its length is
 * the table's without rows plus each row's. A row is rendered once, in the
 * order a cut table keeps them, and only until the rows alone outgrow `room`
 * (a table of thousands of projects keeps a few hundred).
 */
function fitsBySum(t: Templates, view: ReportView, cut: (rows: number) => ReportView, room: number): (rows: number) => boolean {
  const ranked = tableRanking(view);
  const sumOf = rowSums(room, (j) => t.render("plan-table-row", view.projects[ranked[j]!]!).length);
  return (rows) => {
    const kept = sumOf(Math.min(rows, view.projects.length));
    return kept !== undefined && t.render("plan-table", { ...cut(rows), tableRows: [] }).length + kept <= room;
  };
}
