import { chmod, copyFile, lstat, mkdir, readdir, readlink, realpath, symlink } from "node:fs/promises";
import path from "node:path";
import { resolveInside } from "../projects/safe-dir.js";
import type { SandboxBind, SandboxKind } from "./sandbox.js";

/**
 * How a job sees a shared export: its private workspace (HOME, plan files),
 * and the mounts that lay the export read-only at the job's checkoutDir with
 * the job's own folders, private writable copies, over it.
 */
export interface TreeMounts {
  /** The sandbox's private writable workspace (host path); checkoutDir is inside it. */
  workDir: string;
  /** In order: the export read-only at checkoutDir, then each private folder writable at its place. */
  binds: SandboxBind[];
}

export interface ProjectWorkspace {
  /** The tree's root as the job's commands see it (host path of the private copies). */
  checkoutDir: string;
  /** Absent when the job has a full private copy (no bubblewrap: nothing can mount). */
  tree?: TreeMounts;
  /** `ownDirs` by their real paths, relative to checkoutDir (a folder committed as a link resolved). */
  ownDirs: string[];
}

/**
 * Copies a folder of the export without following links: folders and files
 * become writable by their owner (the export is read-only), links are copied
 * as links. Nothing else comes out of `git archive`.
 */
export async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true, mode: 0o755 });
  await chmod(to, 0o755);
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) await copyTree(source, target);
    else if (entry.isSymbolicLink()) await symlink(await readlink(source), target);
    else if (entry.isFile()) {
      await copyFile(source, target);
      await chmod(target, (await lstat(source)).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/** Drops folders inside another of the list ("." holds every other). */
function outermost(dirs: string[]): string[] {
  const unique = [...new Set(dirs)].sort((a, b) => a.length - b.length);
  return unique.filter((dir, i) => !unique.slice(0, i).some((outer) => outer === "." || dir.startsWith(`${outer}/`)));
}

/**
 * Lays out one job's workspace over a shared export (`tree`, read-only):
 * private writable copies of `ownDirs` only (the project's folder; a cdktf
 * program's also its synth output folder), everything else of the commit
 * (local modules, shared files) read from the export through a read-only
 * mount. Without bubblewrap there is no mount: the job gets a copy of the
 * whole tree. `ownDirs` are repository-relative and must resolve inside the
 * export without leaving it; they are used by their real path.
 */
export async function projectWorkspace(kind: SandboxKind, tree: string, workDir: string, ownDirs: string[]): Promise<ProjectWorkspace> {
  const checkoutDir = path.join(workDir, "tree");
  const realTree = await realpath(tree);
  const own: string[] = [];
  for (const dir of ownDirs) own.push(path.relative(realTree, await resolveInside(tree, dir)) || ".");
  if (kind !== "bwrap") {
    await copyTree(tree, checkoutDir);
    return { checkoutDir, ownDirs: own };
  }
  const binds: SandboxBind[] = [{ source: tree, target: checkoutDir, writable: false }];
  await mkdir(checkoutDir, { recursive: true });
  for (const dir of outermost(own)) {
    const copy = path.join(checkoutDir, dir);
    await copyTree(path.join(realTree, dir), copy);
    binds.push({ source: copy, target: copy, writable: true });
  }
  return { checkoutDir, tree: { workDir, binds }, ownDirs: own };
}
