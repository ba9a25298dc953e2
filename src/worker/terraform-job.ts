import { mkdir } from "node:fs/promises";
import type { Run } from "../db/runs.js";
import type { TerraformJob } from "../engines/terraform.js";
import type { WorkerDeps } from "./deps.js";

/** The worker's values of the variables the project allowlists; nothing else of its environment enters the sandbox. */
export const allowlistedEnv = (names: string[]): Record<string, string> =>
  Object.fromEntries(names.flatMap((n) => (process.env[n] !== undefined ? [[n, process.env[n]!]] : [])));

/** Runs fn with a terraform job for one directory of a checkout, holding a terraform home (CLI config, plugin cache) meanwhile. */
export async function withTerraformJob<T>(deps: WorkerDeps, run: Run, checkoutDir: string, projectDir: string, outDir: string, fn: (job: TerraformJob) => Promise<T>): Promise<T> {
  const { home, release } = await deps.terraformHomes.acquire();
  try {
    await mkdir(outDir, { recursive: true });
    return await fn({
      sandbox: deps.sandbox,
      bin: run.engine === "tofu" ? deps.tofuBin : deps.terraformBin,
      home,
      checkoutDir,
      projectDir,
      workspace: run.workspace,
      env: allowlistedEnv(run.config.env ?? []),
      timeoutMs: deps.jobTimeoutMs,
      outDir,
    });
  } finally {
    release();
  }
}
