import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { cdktfSynth } from "../engines/cdktf.js";
import { chooseSandbox, Sandbox } from "../sandbox/sandbox.js";
import { egressFilterFor } from "../sandbox/egress/egress-from-settings.js";
import { capSettings, SandboxCaps } from "../sandbox/limits.js";
import { scrubCheckout } from "../sandbox/scrub.js";
import { failureMessage, terraformPlan, type PlanOutcome } from "../engines/terraform.js";
import { TerraformHomes } from "../engines/terraform-home.js";
import { parsePlanChanges } from "../plans/changes.js";
import { renderPlanComment } from "../render/plan-comment.js";
import type { ProjectResult } from "../render/plan-report.js";
import { loadTemplates } from "../render/templates.js";
import { findBinary } from "../settings/find-binary.js";
import type { Settings } from "../settings/settings.js";

/** The folder to copy into the sandbox: the git work tree holding dir (modules may sit beside it), else dir. */
function sourceRoot(dir: string): { root: string; files?: string[]; sha?: string } {
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const root = git("rev-parse", "--show-toplevel");
    const files = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--full-name", ":/").split("\0").filter(Boolean);
    let sha: string | undefined;
    try {
      sha = git("rev-parse", "HEAD");
    } catch {
      sha = undefined; // no commit yet
    }
    return { root, files, sha };
  } catch {
    return { root: dir };
  }
}

function result(name: string, outcome: PlanOutcome): ProjectResult {
  if (outcome.ok) return { name, workspace: "default", status: "succeeded", changes: parsePlanChanges(outcome.planJson) };
  return { name, workspace: "default", status: "failed", failure: { stage: outcome.stage, message: failureMessage(outcome), output: outcome.output, timedOut: outcome.timedOut } };
}

/**
 * `plangate plan DIR`: the same sandboxed pipeline a pull request gets, on a
 * local directory, printing the comment it would post. Returns the exit code.
 */
export async function localPlan(settings: Settings, target: string, print: (text: string) => void, warn: (text: string) => void): Promise<number> {
  const dir = path.resolve(target);
  if (!existsSync(dir)) {
    warn(`plangate plan: ${target} does not exist`);
    return 2;
  }
  const { root, files, sha } = sourceRoot(dir);
  const work = await mkdtemp(path.join(os.tmpdir(), "plangate-local-"));
  await chmod(work, 0o755);
  try {
    const checkoutDir = path.join(work, "checkout");
    if (files) {
      for (const file of files) {
        await mkdir(path.dirname(path.join(checkoutDir, file)), { recursive: true });
        await cp(path.join(root, file), path.join(checkoutDir, file), { verbatimSymlinks: true }).catch(() => undefined);
      }
    } else {
      await cp(dir, checkoutDir, { recursive: true, verbatimSymlinks: true, filter: (src) => !/[/\\](\.terraform|node_modules|cdktf\.out)$/.test(src) });
    }
    await scrubCheckout(checkoutDir); // nothing from the directory runs as terraform's tooling, as for a pull request
    const projectDir = path.relative(root, dir) || ".";
    const sandbox = new Sandbox(chooseSandbox(settings.sandbox, warn), { caps: new SandboxCaps(capSettings(settings)), egress: egressFilterFor(settings, settings.databaseUrl) });
    const homes = new TerraformHomes(path.join(work, "terraform"), { providerMirror: settings.providerMirror });
    const bin = findBinary(settings.terraformBin) ?? settings.terraformBin;
    const plan = async (unitDir: string) => {
      const { home, release } = await homes.acquire();
      try {
        return await terraformPlan({ sandbox, bin, home, checkoutDir, projectDir: unitDir, workspace: "default", env: {}, timeoutMs: settings.jobTimeoutMs, outDir: path.join(work, "out", unitDir) });
      } finally {
        release();
      }
    };
    const projects: ProjectResult[] = [];
    if (existsSync(path.join(dir, "cdktf.json"))) {
      const synth = await cdktfSynth({ sandbox, checkoutDir, projectDir, env: {}, timeoutMs: settings.jobTimeoutMs, depsCacheDir: path.join(settings.dataDir, "cdktf-deps") });
      if (!synth.ok) projects.push({ name: projectDir, workspace: "default", status: "failed", failure: { stage: synth.stage, message: synth.message, output: synth.output } });
      else for (const stack of synth.stacks) projects.push(result(`${projectDir}/${stack.name}`, await plan(stack.dir)));
    } else {
      await mkdir(path.join(work, "out", projectDir), { recursive: true });
      projects.push(result(projectDir, await plan(projectDir)));
    }
    await sandbox.close();
    const templates = await loadTemplates(settings.templatesDir);
    print(renderPlanComment(templates, { repo: "local", sha: sha ?? "local", projects }, { maxParts: 1000 }).join("\n"));
    return projects.every((p) => p.status === "succeeded") ? 0 : 1;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
