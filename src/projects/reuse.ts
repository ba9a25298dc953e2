import { isDeepStrictEqual } from "node:util";
import type { ProjectConfig } from "../settings/repo-config.js";
import type { ProjectRules } from "../settings/rules.js";
import { isTouched } from "./affected.js";

/** A project's latest plan on the pull request at an earlier commit (db/plan-reuse.ts). */
export interface EarlierPlan {
  sha: string;
  config: ProjectConfig;
  rules: ProjectRules | null;
  finished_at: Date | null;
  last_applied: Date | null;
}

/** The same value as stored JSON reads it back (undefined keys dropped). */
const asStored = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as unknown;

/**
 * Whether a push may keep a project's earlier plan instead of planning it
 * again (DESIGN.md section 1): none of the project's files (its dir and the
 * local modules it calls) changed between that commit and the new head, its
 * config and effective rules and the policies are the same, and nothing was
 * applied to it since. Unknown changes (`changed` undefined) never reuse. Pure.
 */
export function mayReuse(input: {
  project: ProjectConfig;
  rules: ProjectRules;
  earlier: EarlierPlan | undefined;
  changed: string[] | undefined;
  samePolicies: boolean;
  moduleCalls: Map<string, Set<string>>;
  projects: readonly ProjectConfig[];
}): boolean {
  const { earlier, changed } = input;
  if (!earlier || !changed || !input.samePolicies || !earlier.finished_at) return false;
  if (earlier.last_applied && earlier.last_applied >= earlier.finished_at) return false;
  if (!isDeepStrictEqual(asStored(earlier.config), asStored(input.project)) || !isDeepStrictEqual(asStored(earlier.rules), asStored(input.rules))) return false;
  return !isTouched(input.project, changed, input.moduleCalls, input.projects);
}
