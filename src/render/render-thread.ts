import { parentPort, workerData } from "node:worker_threads";
import { renderPlanComment, type SplitOptions } from "./plan-comment.js";
import type { PlanReport } from "./plan-report.js";
import { loadTemplates } from "./templates.js";

/** The comment renderer's thread (see CommentRenderer): renders each report it is sent, with the process's templates. */
const templates = await loadTemplates((workerData as { templatesDir?: string }).templatesDir);

parentPort!.on("message", ({ id, report, options }: { id: number; report: PlanReport; options: SplitOptions }) => {
  try {
    parentPort!.postMessage({ id, bodies: renderPlanComment(templates, report, options) });
  } catch (error) {
    parentPort!.postMessage({ id, error: (error as Error).message });
  }
});
