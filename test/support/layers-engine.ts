import path from "node:path";
import type { Engine } from "../../src/engines/engine.js";
import { terraform } from "../../src/engines/terraform-engine.js";
import { parsePrJson, readTextInside } from "../../src/sandbox/safe-read.js";

/**
 * A test engine, as a new engine would be written: one module and one line
 * in the registry. A folder holding `layers.json` ({"layers": ["base",
 * "app"]}) is a project whose layers are terraform roots below it, planned
 * and applied in the listed order, each a run of its own.
 */
export const layers: Engine = {
  name: "layers",
  tool: terraform.tool,
  findProjects: (files) => [...new Set(files.filter((f) => path.posix.basename(f) === "layers.json").map((f) => path.posix.dirname(f)))],
  ownsSubtree: true,
  toolingDirs: [],
  writableDirs: () => [],
  unitsAreRuns: true,
  async prepare(_tools, job) {
    const file = path.join(job.checkoutDir, job.projectDir, "layers.json");
    const listed = (parsePrJson(await readTextInside(job.checkoutDir, file), "layers.json") as { layers?: unknown }).layers;
    if (!Array.isArray(listed) || !listed.every((l) => typeof l === "string" && /^[a-z0-9-]+$/.test(l))) {
      return { ok: false, tool: "layers", stage: "prepare", message: 'layers.json must list "layers" by folder name', output: "", timedOut: false };
    }
    return { ok: true, units: listed.map((name: string) => ({ name, dir: path.posix.join(job.projectDir, name) })), output: `${listed.length} layers` };
  },
  plan: (tools, job) => terraform.plan(tools, job),
  apply: (tools, job, stored) => terraform.apply(tools, job, stored),
};
