import path from "node:path";
import picomatch from "picomatch";
import type { Selector } from "../commands/parse-command.js";
import { normalDir } from "../settings/dir-rules.js";
import type { ProjectConfig } from "../settings/repo-config.js";
import { modulesUsedBy } from "./modules.js";

type Dirs = Pick<ProjectConfig, "dir">;

/** Everything under `dir` (the root: everything). */
const under = (dir: string) => (normalDir(dir) === "." ? "**" : `${normalDir(dir)}/**`);

/** A path is under a dir (the root holds everything); a dir's name is taken as it is written, never as a glob. */
const isUnder = (file: string, dir: string) => dir === "." || file === dir || file.startsWith(`${dir}/`);

/** The projects' dirs, normalised and sorted (a dir's subdirs are one run of it), made once per list of projects. */
const sortedDirsOf = new WeakMap<readonly Dirs[], string[]>();
function sortedDirs(projects: readonly Dirs[]): string[] {
  let dirs = sortedDirsOf.get(projects);
  if (!dirs) sortedDirsOf.set(projects, (dirs = [...new Set(projects.map((p) => normalDir(p.dir)))].sort()));
  return dirs;
}

/** The project dirs strictly inside `dir` (all of them for the root), found by a binary search of the sorted dirs. */
function dirsInside(dir: string, projects: readonly Dirs[]): string[] {
  const dirs = sortedDirs(projects);
  if (dir === ".") return dirs.filter((d) => d !== ".");
  const prefix = `${dir}/`;
  let lo = 0;
  for (let hi = dirs.length; lo < hi; ) {
    const mid = (lo + hi) >> 1;
    if (dirs[mid]! < prefix) lo = mid + 1;
    else hi = mid;
  }
  const inside: string[] = [];
  for (let i = lo; i < dirs.length && dirs[i]!.startsWith(prefix); i++) inside.push(dirs[i]!);
  return inside;
}

/** The other projects inside a project's dir, which own their own files (a local module it calls stays its own too). */
const nestedDirs = (dir: string, modules: Set<string>, projects: readonly Dirs[]) => dirsInside(dir, projects).filter((d) => !modules.has(d));

/**
 * Every file a project is made of: everything under its dir except under
 * another project's dir inside it, and every local module it calls. What a
 * project reads (a `templatefile()`'s `.tpl`, a script a provisioner runs) is
 * in there whatever its name.
 */
export function projectScope(project: Dirs, moduleCalls: Map<string, Set<string>>, projects: readonly Dirs[]): string[] {
  const dir = normalDir(project.dir);
  const modules = modulesUsedBy(dir, moduleCalls);
  return [under(dir), ...[...modules].map(under), ...nestedDirs(dir, modules, projects).map((d) => `!${under(d)}`)];
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
  if (!project.autoplan.when_modified) return isTouched(project, changedFiles, moduleCalls, projects);
  return matchesAny(watchPatterns(project, moduleCalls, projects), changedFiles);
}

/**
 * Whether the PR changes any file of the project (its scope, whatever its
 * when_modified or autoplan say): projectScope's files, decided by path
 * prefixes, so that a PR against thousands of projects is checked in
 * milliseconds (the other projects' dirs are searched, not scanned).
 */
export function isTouched(project: Dirs, changedFiles: string[], moduleCalls: Map<string, Set<string>>, projects: readonly Dirs[]): boolean {
  const dir = normalDir(project.dir);
  const modules = modulesUsedBy(dir, moduleCalls);
  const candidates = changedFiles.filter((f) => isUnder(f, dir) || [...modules].some((m) => isUnder(f, m)));
  if (!candidates.length) return false;
  const nested = nestedDirs(dir, modules, projects);
  return candidates.some((f) => !nested.some((d) => isUnder(f, d)));
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
