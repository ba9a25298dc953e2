import { readdir, rm } from "node:fs/promises";
import path from "node:path";

/**
 * Names terraform treats as tooling rather than code: `.terraform/` (a
 * working directory's installed providers, modules and backend settings),
 * `terraform.d/` (an implicit local provider mirror), `.terraformrc` and
 * `terraform.rc` (CLI configuration), `.terraform.d/` (the CLI config
 * directory, whose *.tfrc files terraform loads from HOME).
 */
export const TOOLING_NAMES: ReadonlySet<string> = new Set([".terraform", "terraform.d", ".terraformrc", "terraform.rc", ".terraform.d"]);

/**
 * Removes every entry with a tooling name anywhere under `root` (files,
 * folders and links alike; links are never followed), so that nothing a pull
 * request commits runs as terraform's tooling. Returns the removed paths,
 * relative to root.
 */
export async function scrubCheckout(root: string): Promise<string[]> {
  const removed: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (TOOLING_NAMES.has(entry.name)) {
        await rm(full, { recursive: true, force: true });
        removed.push(path.relative(root, full));
      } else if (entry.isDirectory()) {
        await walk(full);
      }
    }
  };
  await walk(root);
  return removed.sort();
}
