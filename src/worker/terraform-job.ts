import { mkdir } from "node:fs/promises";
import type { Run } from "../db/runs.js";
import type { TerraformJob } from "../engines/terraform.js";
import type { WorkerDeps } from "./deps.js";

/**
 * Runs fn with a terraform job for one directory of a checkout, holding a
 * terraform home (CLI config, plugin cache) meanwhile. `env` is all of the
 * worker's environment that enters the sandbox (see projectEnv).
 */
export async function withTerraformJob<T>(
  deps: WorkerDeps,
  run: Pick<Run, "engine" | "workspace">,
  where: Pick<TerraformJob, "checkoutDir" | "projectDir" | "outDir" | "tree" | "started">,
  env: Record<string, string>,
  fn: (job: TerraformJob) => Promise<T>,
): Promise<T> {
  const { home, release } = await deps.terraformHomes.acquire();
  try {
    await mkdir(where.outDir, { recursive: true });
    return await fn({
      sandbox: deps.sandbox,
      bin: run.engine === "tofu" ? deps.tofuBin : deps.terraformBin,
      home,
      ...where,
      workspace: run.workspace,
      env,
      timeoutMs: deps.jobTimeoutMs,
    });
  } finally {
    release();
  }
}
