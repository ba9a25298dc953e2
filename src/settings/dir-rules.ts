import path from "node:path";

/** Why a project directory is refused, or undefined when it is a plain relative path. */
export function unsafeDirReason(dir: string): string | undefined {
  if (path.isAbsolute(dir) || /^[A-Za-z]:/.test(dir)) return "must be relative to the repository root";
  if (dir.includes("\0")) return "must not contain NUL characters";
  const normal = path.posix.normalize(dir.replace(/\\/g, "/"));
  if (normal === ".." || normal.startsWith("../")) return "must stay inside the repository (no \"..\" escaping it)";
  return undefined;
}

/** A dir as plangate compares it: `./x/` is `x`, the root is `.`. */
export function normalDir(dir: string): string {
  const normal = path.posix.normalize(dir.replace(/\\/g, "/")).replace(/\/+$/, "");
  return normal === "" ? "." : normal;
}
