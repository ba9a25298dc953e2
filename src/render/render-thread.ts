import { parentPort, workerData } from "node:worker_threads";
import { parsePlanChanges } from "../plans/changes.js";
import { renderPlanComment, type SplitOptions } from "./plan-comment.js";
import type { PlanReport } from "./plan-report.js";
import { loadTemplates } from "./templates.js";

/** The comment renderer's thread (see CommentRenderer): renders each report it is sent, with the process's templates. */
const templates = await loadTemplates((workerData as { templatesDir?: string }).templatesDir);

/**
 * A one-resource plan rendered once as the thread starts: the templates compile on their first use, and that
 * first use is otherwise a fresh worker's first plan comment, which waits for it.
 */
const WARM_UP: PlanReport = {
  repo: "plangate/warm-up",
  sha: "0".repeat(40),
  projects: [{
    name: "warm-up",
    workspace: "default",
    status: "succeeded",
    changes: parsePlanChanges({
      resource_changes: [{ address: "terraform_data.a", mode: "managed", type: "terraform_data", name: "a", change: { actions: ["create"], before: null, after: { input: "a" }, after_unknown: { id: true } } }],
    }),
  }],
};
try {
  renderPlanComment(templates, WARM_UP);
} catch {
  // Only a warm-up: a real report meets whatever failed here, and says so.
}

parentPort!.on("message", ({ id, report, options }: { id: number; report: PlanReport; options: SplitOptions }) => {
  try {
    parentPort!.postMessage({ id, bodies: renderPlanComment(templates, report, options) });
  } catch (error) {
    parentPort!.postMessage({ id, error: (error as Error).message });
  }
});
