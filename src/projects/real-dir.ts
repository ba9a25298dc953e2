import path from "node:path";
import { normalDir as normal } from "../settings/dir-rules.js";

/** A symlink's target as git stores it, per link path (repo-relative). */
export type LinkTargets = ReadonlyMap<string, string>;

/** Links followed before giving up, as the kernel does (ELOOP). */
const MAX_HOPS = 40;

/**
 * Where `dir` really is in the checkout: each component that is a symlink is
 * replaced by its target, so `evil -> infra/network` is `infra/network`.
 * A link that leaves the repository, or a loop, leaves the dir as written
 * (it is then compared as written: nothing gets looser).
 */
export function realDir(dir: string, links: LinkTargets): string {
  const parts = normal(dir).split("/").filter((p) => p !== ".");
  let resolved: string[] = [];
  let hops = 0;
  while (parts.length) {
    const next = parts.shift()!;
    const candidate = [...resolved, next].join("/");
    const target = links.get(candidate);
    if (target === undefined) {
      resolved.push(next);
      continue;
    }
    if (++hops > MAX_HOPS || path.posix.isAbsolute(target)) return normal(dir);
    const joined = normal(path.posix.join(resolved.join("/") || ".", target));
    if (joined === ".." || joined.startsWith("../")) return normal(dir);
    // The target's own components may be links too: they are walked again from the root.
    parts.unshift(...joined.split("/").filter((p) => p !== "."));
    resolved = [];
  }
  return resolved.length ? resolved.join("/") : ".";
}
