import { realpath } from "node:fs/promises";
import path from "node:path";

/** Why a project directory is refused, or undefined when it is a plain relative path. */
export function unsafeDirReason(dir: string): string | undefined {
  if (path.isAbsolute(dir) || /^[A-Za-z]:/.test(dir)) return "must be relative to the repository root";
  if (dir.includes("\0")) return "must not contain NUL characters";
  const normal = path.posix.normalize(dir.replace(/\\/g, "/"));
  if (normal === ".." || normal.startsWith("../")) return "must stay inside the repository (no \"..\" escaping it)";
  return undefined;
}

/** Resolves dir inside root, following symlinks; throws when it lands outside root or does not exist. */
export async function resolveInside(root: string, dir: string): Promise<string> {
  const reason = unsafeDirReason(dir);
  if (reason) throw new Error(`dir "${dir}" ${reason}`);
  const realRoot = await realpath(root);
  let real: string;
  try {
    real = await realpath(path.join(realRoot, dir));
  } catch {
    throw new Error(`dir "${dir}" does not exist at this commit`);
  }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) throw new Error(`dir "${dir}" resolves outside the repository`);
  return real;
}
