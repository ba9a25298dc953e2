import path from "node:path";
import picomatch from "picomatch";
import type { Selector } from "../commands/parse-command.js";
import type { ProjectConfig } from "../settings/repo-config.js";
import { modulesUsedBy } from "./modules.js";

const TERRAFORM_DEFAULTS = ["**/*.tf", "**/*.tf.json", "**/*.tfvars", "**/*.tfvars.json", ".terraform.lock.hcl"];
const CDKTF_DEFAULTS = ["**/*", "!cdktf.out/**", "!node_modules/**", "!**/*.md"];

/** A project's when_modified globs, made relative to the repository root. */
export function watchPatterns(project: ProjectConfig, moduleCalls: Map<string, Set<string>>): string[] {
  const relative = project.autoplan.when_modified ?? (project.engine === "cdktf" ? CDKTF_DEFAULTS : TERRAFORM_DEFAULTS);
  const patterns = relative.map((p) => {
    const negated = p.startsWith("!");
    const joined = path.posix.normalize(path.posix.join(project.dir, negated ? p.slice(1) : p));
    return negated ? `!${joined}` : joined;
  });
  // Without explicit globs a change to a local module the project calls affects it too.
  if (!project.autoplan.when_modified) for (const m of modulesUsedBy(project.dir, moduleCalls)) patterns.push(`${m}/**`);
  return patterns;
}

export function isAffected(project: ProjectConfig, changedFiles: string[], moduleCalls: Map<string, Set<string>>): boolean {
  const patterns = watchPatterns(project, moduleCalls);
  const include = picomatch(patterns.filter((p) => !p.startsWith("!")), { dot: true });
  const exclude = picomatch(patterns.filter((p) => p.startsWith("!")).map((p) => p.slice(1)), { dot: true });
  return changedFiles.some((f) => include(f) && !exclude(f));
}

export type Selection = { mode: "autoplan" } | { mode: "command"; selector: Selector };

/** The projects to plan: affected ones on autoplan; on /plan, the selector decides. */
export function selectProjects(projects: ProjectConfig[], changedFiles: string[], moduleCalls: Map<string, Set<string>>, selection: Selection): ProjectConfig[] {
  if (selection.mode === "autoplan") return projects.filter((p) => p.autoplan.enabled && isAffected(p, changedFiles, moduleCalls));
  const { selector } = selection;
  const named = selector.project !== undefined || selector.dir !== undefined;
  return projects.filter((p) => {
    if (selector.project !== undefined && p.name !== selector.project) return false;
    if (selector.dir !== undefined && p.dir !== path.posix.normalize(selector.dir)) return false;
    if (selector.workspace !== undefined && p.workspace !== selector.workspace) return false;
    return selector.all || named || isAffected(p, changedFiles, moduleCalls);
  });
}
