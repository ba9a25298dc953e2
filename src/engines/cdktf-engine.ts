import path from "node:path";
import { CDKTF_OUT_DIR, cdktfSynth } from "./cdktf.js";
import type { Engine } from "./engine.js";
import { terraform } from "./terraform-engine.js";

/**
 * CDK for Terraform: a program (a folder with cdktf.json) is synthesized
 * once, without network, into stacks; each stack is a terraform root,
 * planned and applied by terraform as a run of its own, in dependency order.
 */
export const cdktf: Engine = {
  name: "cdktf",
  // Its stacks are planned and applied by terraform; its own steps (install, synth) name cdktf.
  tool: terraform.tool,
  findProjects: (files) => [...new Set(files.filter((f) => path.posix.basename(f) === "cdktf.json").map((f) => path.posix.dirname(f)))],
  ownsSubtree: true,
  toolingDirs: [...terraform.toolingDirs, "cdktf.out"],
  writableDirs: () => [CDKTF_OUT_DIR],
  unitsAreRuns: true,
  async prepare(tools, job) {
    const synth = await cdktfSynth({
      sandbox: tools.sandbox,
      checkoutDir: job.checkoutDir,
      tree: job.tree,
      projectDir: job.projectDir,
      env: job.env,
      timeoutMs: Math.max(1, job.deadline - tools.sandbox.clock.now()),
      depsCacheDir: tools.depsCacheDir,
      stacks: job.only,
    });
    if (!synth.ok) return synth;
    return { ok: true, units: synth.stacks.map((s) => ({ name: s.name, dir: s.dir })), output: synth.output };
  },
  plan: (tools, job) => terraform.plan(tools, job),
  apply: (tools, job, stored) => terraform.apply(tools, job, stored),
};
