import path from "node:path";

/** A unit plangate plans and applies: one terraform root module in one workspace. */
export interface Project {
  name: string;
  /** Relative to the repository root, "." for the root; never absolute, never escaping. */
  dir: string;
  engine: "terraform" | "tofu" | "cdktf";
  workspace: string;
}

const TERRAFORM_FILE = /\.tf(\.json)?$/;

/**
 * Without a config file every directory whose terraform files the PR changes
 * is an affected project with the defaults.
 */
export function affectedProjectsWithoutConfig(changedFiles: string[]): Project[] {
  const dirs = new Set<string>();
  for (const file of changedFiles) {
    if (!TERRAFORM_FILE.test(file)) continue;
    dirs.add(path.posix.dirname(file));
  }
  return [...dirs].sort().map((dir) => ({ name: dir, dir, engine: "terraform", workspace: "default" }));
}
