import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ENGINES } from "../engines/registry.js";
import { outDirOf, ProjectRuns, type UnitPlan } from "../run/project-runs.js";
import { chooseSandbox, Sandbox } from "../sandbox/sandbox.js";
import { egressFilterFor } from "../sandbox/egress/egress-from-settings.js";
import { capSettings, SandboxCaps } from "../sandbox/limits.js";
import { scrubCheckout } from "../sandbox/scrub.js";
import { failureMessage } from "../engines/terraform.js";
import { TerraformHomes } from "../engines/terraform-home.js";
import { renderPlanComment } from "../render/plan-comment.js";
import type { ProjectResult } from "../render/plan-report.js";
import { loadTemplates } from "../render/templates.js";
import { findBinary } from "../settings/find-binary.js";
import type { Settings } from "../settings/settings.js";
import { CONFIG_FILE } from "../settings/load-repo-config.js";
import type { PolicyConfig, ProjectConfig } from "../settings/repo-config.js";
import type { PolicyContext } from "../plans/cel-policy.js";
import { isBlocking, judgePlan } from "../plans/policy-judgement.js";
import { denies, policyResults } from "../plans/policy-results.js";
import type { Templates } from "../render/templates.js";
import { inertTerminal, inertTerminalLines } from "../text/terminal-text.js";
import { policyReportText } from "./policy-report.js";
import { readPolicies } from "./policy-test.js";

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

/** The policies a local plan is judged by: those of the .plangate.yml at the root of the directory's repository (its working copy), if there is one. */
async function localPolicies(root: string): Promise<{ ok: true; file?: string; policies: PolicyConfig[]; projects: ProjectConfig[] } | { ok: false; problems: string[] }> {
  const file = path.join(root, CONFIG_FILE);
  if (!existsSync(file)) return { ok: true, policies: [], projects: [] };
  // Named as the user would type it from here: relative inside the current directory, else in full.
  const relative = path.relative(process.cwd(), file);
  const shown = relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
  const read = await readPolicies(shown);
  return read.ok ? { ...read, file: shown } : read;
}

/**
 * Judges each planned project as a pull request's plan is judged: the
 * comment shows the policies' outcomes (a blocking one fails the project, as
 * in the worker), and every policy's result is printed after it. Returns
 * whether a deny (or a rule that could not be evaluated) matched.
 */
function judgeLocally(t: Templates, projects: ProjectResult[], config: { file?: string; policies: PolicyConfig[]; projects: ProjectConfig[] }, dir: string, engine: string, sha: string | undefined): { reports: string[]; denied: boolean } {
  const reports: string[] = [];
  let denied = false;
  if (!config.file || !config.policies.length) return { reports, denied };
  for (const project of projects) {
    if (project.status !== "succeeded" || !project.changes) continue;
    const listed = config.projects.find((p) => p.dir.replace(/^\.\/|\/$/g, "") === dir);
    const context: PolicyContext = {
      project: { name: listed?.name ?? project.name, dir, workspace: listed?.workspace ?? project.workspace, engine: listed?.engine ?? engine },
      pull_request: { number: 1, author: "local", labels: [], base: "main", head_sha: sha ?? "0".repeat(40) },
    };
    const judgement = judgePlan(config.policies, project.changes, context);
    if (judgement.policy.outcomes.length) project.policy = judgement.policy.outcomes;
    if (judgement.blocked) {
      const count = judgement.violations.length + judgement.policy.outcomes.filter(isBlocking).length;
      project.status = "failed";
      project.failure = { stage: "policy", message: t.render("failure-text", { kind: "policy", count }).trim(), violations: judgement.violations };
    }
    const results = policyResults(config.policies, project.changes, context);
    denied ||= results.some(denies);
    reports.push(policyReportText(t, { configFile: config.file, project: context.project.name, drift: false, results }).trimEnd());
  }
  return { reports, denied };
}

function result(name: string, outcome: UnitPlan): ProjectResult {
  if (outcome.ok) return { name, workspace: "default", status: "succeeded", changes: outcome.changes() };
  return { name, workspace: "default", status: "failed", failure: { tool: outcome.tool, stage: outcome.stage, message: failureMessage(outcome), output: outcome.output, timedOut: outcome.timedOut } };
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
  const config = await localPolicies(root);
  if (!config.ok) {
    warn(config.problems.map((p) => `plangate plan: ${inertTerminal(p)}`).join("\n"));
    return 2;
  }
  const notCopied = new Set(["node_modules", ...ENGINES.toolingDirs]);
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
      await cp(dir, checkoutDir, { recursive: true, verbatimSymlinks: true, filter: (src) => !notCopied.has(path.basename(src)) });
    }
    await scrubCheckout(checkoutDir); // nothing from the directory runs as terraform's tooling, as for a pull request
    const projectDir = path.relative(root, dir) || ".";
    const sandbox = new Sandbox(chooseSandbox(settings.sandbox, warn), { caps: new SandboxCaps(capSettings(settings)), egress: egressFilterFor(settings, settings.databaseUrl) });
    const tools = {
      sandbox,
      homes: new TerraformHomes(path.join(work, "terraform"), { providerMirror: settings.providerMirror }),
      binaries: { terraformBin: findBinary(settings.terraformBin) ?? settings.terraformBin, tofuBin: findBinary(settings.tofuBin) ?? settings.tofuBin },
      depsCacheDir: path.join(settings.dataDir, "cdktf-deps"),
    };
    const runs = new ProjectRuns({ engines: ENGINES, tools, maskPatterns: settings.maskPatterns, envAllow: settings.envAllow, applyEnvAllow: settings.applyEnvAllow });
    // The folder's engine: the one that claims it as a project, one owning its subtree first (the default engine when none does).
    const entries = (await readdir(dir)).map((f) => path.posix.join(projectDir, f));
    const claims = [...ENGINES.all].sort((a, b) => Number(b.ownsSubtree) - Number(a.ownsSubtree));
    const engine = claims.find((e) => e.findProjects(entries).includes(projectDir)) ?? ENGINES.all[0]!;
    const project = { name: projectDir, dir: projectDir, engine: engine.name, workspace: "default", env: [] };
    const projects: ProjectResult[] = [];
    const opened = await runs.open({ checkout: { checkoutDir }, project, phase: "plan", reason: "local", deadline: Date.now() + settings.jobTimeoutMs });
    if (!opened.ok) projects.push({ name: projectDir, workspace: "default", status: "failed", failure: { stage: "config", message: opened.message } });
    else {
      const prepared = await opened.run.prepare();
      if (!prepared.ok) projects.push({ name: projectDir, workspace: "default", status: "failed", failure: { stage: prepared.stage, message: prepared.message, output: prepared.output } });
      else {
        for (const unit of prepared.units) {
          const planned = await opened.run.plan(unit, { outDir: outDirOf(path.join(work, "out"), unit), deadline: Date.now() + settings.jobTimeoutMs });
          projects.push(result(unit.name ? `${projectDir}/${unit.name}` : projectDir, planned));
        }
      }
    }
    await sandbox.close();
    const templates = await loadTemplates(settings.templatesDir);
    const judged = judgeLocally(templates, projects, config, projectDir, engine.name, sha);
    // The comment's markdown keeps what a plan or config holds; a terminal must not run its escape sequences.
    print(inertTerminalLines(renderPlanComment(templates, { repo: "local", sha: sha ?? "local", projects }, { maxParts: 1000 }).join("\n")));
    print(templates.render("local-plan-credentials", {}).trim());
    for (const report of judged.reports) print(`\n${report}`);
    return projects.every((p) => p.status === "succeeded") && !judged.denied ? 0 : 1;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
