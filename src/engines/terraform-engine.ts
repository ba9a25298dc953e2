import { mkdir } from "node:fs/promises";
import path from "node:path";
import { writeInside } from "../sandbox/safe-read.js";
import { projectAsUnit, type Engine, type EngineTools, type UnitJob } from "./engine.js";
import { planFilePath, terraformApply, terraformPlan, terraformPlanTogether, workDirOf, type TerraformJob } from "./terraform.js";

const TERRAFORM_FILE = /\.tf(\.json)?$/;

/** Runs fn with the units' terraform jobs, holding a terraform home (CLI config, plugin cache) meanwhile. */
async function withJobs<T>(tools: EngineTools, tool: string, bin: string, jobs: UnitJob[], fn: (jobs: TerraformJob[]) => Promise<T>): Promise<T> {
  const { home, release } = await tools.homes.acquire();
  try {
    for (const job of jobs) await mkdir(job.outDir, { recursive: true });
    return await fn(jobs.map(({ unitDir, deadline, ...place }) => ({ ...place, sandbox: tools.sandbox, bin, tool, home, projectDir: unitDir, timeoutMs: Math.max(1, deadline - tools.sandbox.clock.now()) })));
  } finally {
    release();
  }
}

const withJob = <T>(tools: EngineTools, tool: string, bin: string, job: UnitJob, fn: (job: TerraformJob) => Promise<T>): Promise<T> => withJobs(tools, tool, bin, [job], ([one]) => fn(one!));

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
    planTogether: (tools, root, jobs, stop, halve) => withJobs(tools, name, binary(tools), jobs, (tfJobs) => terraformPlanTogether(root, tfJobs, stop, halve)),
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
