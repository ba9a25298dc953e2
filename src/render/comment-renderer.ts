import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { renderPlanComment, type SplitOptions } from "./plan-comment.js";
import type { PlanReport } from "./plan-report.js";
import type { Templates } from "./templates.js";

interface Waiting {
  resolve: (bodies: string[]) => void;
  reject: (error: Error) => void;
}

/**
 * Renders plan comments on a thread of its own, so that a large plan's
 * comment (tens of milliseconds of CPU for thousands of resources) is
 * rendered while the process's main thread stores the plan. Where the
 * thread's script is not there (the TypeScript sources run directly, as in
 * the tests) or the thread has failed, it renders on the calling thread.
 */
export class CommentRenderer {
  private worker?: Worker;
  private nextId = 0;
  private readonly waiting = new Map<number, Waiting>();

  constructor(
    private readonly templates: Templates,
    templatesDir?: string,
    script = new URL("./render-thread.js", import.meta.url),
  ) {
    if (!existsSync(fileURLToPath(script))) return;
    const worker = new Worker(script, { workerData: { templatesDir } });
    worker.unref(); // held only while a render is waited for
    worker.on("message", ({ id, bodies, error }: { id: number; bodies?: string[]; error?: string }) => {
      const waiting = this.waiting.get(id);
      if (!waiting) return;
      this.waiting.delete(id);
      if (!this.waiting.size) worker.unref();
      if (error === undefined) waiting.resolve(bodies!);
      else waiting.reject(new Error(error));
    });
    const broken = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiting of this.waiting.values()) waiting.reject(error);
      this.waiting.clear();
    };
    worker.on("error", broken);
    worker.on("exit", (code) => broken(new Error(`the comment renderer's thread exited with code ${code}`)));
    this.worker = worker;
  }

  /** True when comments are rendered on the renderer's own thread. */
  get threaded(): boolean {
    return !!this.worker;
  }

  /** The comment's parts for `report` (see renderPlanComment). */
  render(report: PlanReport, options: SplitOptions = {}): Promise<string[]> {
    const worker = this.worker;
    if (!worker) return new Promise((resolve) => resolve(renderPlanComment(this.templates, report, options)));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.waiting.set(id, { resolve, reject });
      worker.ref();
      try {
        worker.postMessage({ id, report, options });
      } catch (error) {
        this.waiting.delete(id);
        if (!this.waiting.size) worker.unref();
        reject(error as Error);
      }
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
