import { mkdir } from "node:fs/promises";
import path from "node:path";
import { writeInside } from "../sandbox/safe-read.js";
import { projectAsUnit, type Engine, type EngineTools, type UnitJob } from "./engine.js";
import { planFilePath, terraformApply, terraformPlan, workDirOf, type TerraformJob } from "./terraform.js";

const TERRAFORM_FILE = /\.tf(\.json)?$/;

/** Runs fn with the unit's terraform job, holding a terraform home (CLI config, plugin cache) meanwhile. */
async function withJob<T>(tools: EngineTools, tool: string, bin: string, job: UnitJob, fn: (job: TerraformJob) => Promise<T>): Promise<T> {
  const { home, release } = await tools.homes.acquire();
  try {
    await mkdir(job.outDir, { recursive: true });
    const { unitDir, deadline, ...place } = job;
    return await fn({ ...place, sandbox: tools.sandbox, bin, tool, home, projectDir: unitDir, timeoutMs: Math.max(1, deadline - tools.sandbox.clock.now()) });
  } finally {
    release();
  }
}

/** An engine driving a terraform-compatible CLI: every folder of `.tf` files is a project, planned and applied as one unit. */
export function cliEngine(name: string, binary: (tools: EngineTools) => string): Engine {
  return {
    name,
    tool: name,
    findProjects: (files) => [...new Set(files.filter((f) => TERRAFORM_FILE.test(f)).map((f) => path.posix.dirname(f)))],
    ownsSubtree: false,
    toolingDirs: [".terraform"],
    writableDirs: () => [],
    unitsAreRuns: false,
    prepare: async (_tools, job) => projectAsUnit(job),
    plan: (tools, job) => withJob(tools, name, binary(tools), job, terraformPlan),
    apply: (tools, job, stored) =>
      withJob(tools, name, binary(tools), job, async (tf) => {
        if (!stored) return terraformApply(tf, false);
        // No link or hard link a synth planted under the plan file's name is written through.
        await writeInside(workDirOf(tf), planFilePath(tf), stored);
        return terraformApply(tf, true);
      }),
  };
}

/** Terraform (PLANGATE_TERRAFORM_BIN). */
export const terraform = cliEngine("terraform", (tools) => tools.binaries.terraformBin);
