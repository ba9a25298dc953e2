import path from "node:path";
import picomatch from "picomatch";
import type { Selector } from "../commands/parse-command.js";
import { normalDir } from "../settings/dir-rules.js";
import type { ProjectConfig } from "../settings/repo-config.js";
import { modulesUsedBy } from "./modules.js";

type Dirs = Pick<ProjectConfig, "dir">;

/** Everything under `dir` (the root: everything). */
const under = (dir: string) => (normalDir(dir) === "." ? "**" : `${normalDir(dir)}/**`);

/**
 * Every file a project is made of: everything under its dir except under
 * another project's dir inside it, and every local module it calls. What a
 * project reads (a `templatefile()`'s `.tpl`, a script a provisioner runs) is
 * in there whatever its name.
 */
export function projectScope(project: Dirs, moduleCalls: Map<string, Set<string>>, projects: readonly Dirs[]): string[] {
  const dir = normalDir(project.dir);
  const modules = modulesUsedBy(dir, moduleCalls);
  const nested = projects
    .map((p) => normalDir(p.dir))
    .filter((d) => d !== dir && (dir === "." || d.startsWith(`${dir}/`)) && !modules.has(d) && !dir.startsWith(`${d}/`));
  return [under(dir), ...[...modules].map(under), ...[...new Set(nested)].map((d) => `!${under(d)}`)];
}

/** A project's when_modified globs, made relative to the repository root; without any, its whole scope. */
export function watchPatterns(project: ProjectConfig, moduleCalls: Map<string, Set<string>>, projects: readonly Dirs[] = [project]): string[] {
  if (!project.autoplan.when_modified) return projectScope(project, moduleCalls, projects);
  return project.autoplan.when_modified.map((p) => {
    const negated = p.startsWith("!");
    const joined = path.posix.normalize(path.posix.join(project.dir, negated ? p.slice(1) : p));
    return negated ? `!${joined}` : joined;
  });
}

function matchesAny(patterns: string[], changedFiles: string[]): boolean {
  const include = picomatch(patterns.filter((p) => !p.startsWith("!")), { dot: true });
  const exclude = picomatch(patterns.filter((p) => p.startsWith("!")).map((p) => p.slice(1)), { dot: true });
  return changedFiles.some((f) => include(f) && !exclude(f));
}

export function isAffected(project: ProjectConfig, changedFiles: string[], moduleCalls: Map<string, Set<string>>, projects: readonly Dirs[] = [project]): boolean {
  return matchesAny(watchPatterns(project, moduleCalls, projects), changedFiles);
}

/** Whether the PR changes any file of the project (its scope, whatever its when_modified or autoplan say). */
export function isTouched(project: Dirs, changedFiles: string[], moduleCalls: Map<string, Set<string>>, projects: readonly Dirs[]): boolean {
  return matchesAny(projectScope(project, moduleCalls, projects), changedFiles);
}

export type Selection = { mode: "autoplan" } | { mode: "command"; selector: Selector };

/** The projects to plan: affected ones on autoplan; on /plan, the selector decides. */
export function selectProjects(projects: ProjectConfig[], changedFiles: string[], moduleCalls: Map<string, Set<string>>, selection: Selection): ProjectConfig[] {
  if (selection.mode === "autoplan") return projects.filter((p) => p.autoplan.enabled && isAffected(p, changedFiles, moduleCalls, projects));
  const { selector } = selection;
  const named = selector.project !== undefined || selector.dir !== undefined;
  return projects.filter((p) => {
    if (selector.project !== undefined && p.name !== selector.project) return false;
    if (selector.dir !== undefined && normalDir(p.dir) !== normalDir(selector.dir)) return false;
    if (selector.workspace !== undefined && p.workspace !== selector.workspace) return false;
    return selector.all || named || isAffected(p, changedFiles, moduleCalls, projects);
  });
}
