import { realpath } from "node:fs/promises";
import path from "node:path";
import { unsafeDirReason } from "../settings/dir-rules.js";

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
