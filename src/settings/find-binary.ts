import { accessSync, constants } from "node:fs";
import path from "node:path";

/** The absolute path of an executable given as a path or a name on PATH, or undefined. */
export function findBinary(nameOrPath: string, searchPath = process.env.PATH ?? ""): string | undefined {
  const candidates = nameOrPath.includes("/") ? [path.resolve(nameOrPath)] : searchPath.split(":").filter(Boolean).map((d) => path.join(d, nameOrPath));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}
