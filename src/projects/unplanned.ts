import { normalDir } from "../settings/dir-rules.js";
import type { ProjectConfig } from "../settings/repo-config.js";
import { isTouched } from "./affected.js";

/** A project the PR changes that the plan at hand leaves out. */
export interface Unplanned {
  name: string;
  dir: string;
  workspace: string;
  /** The PR's own config knows it (`/plan -p NAME` plans it); false: only the default branch does. */
  plannable: boolean;
}

interface Known {
  projects: ProjectConfig[];
  moduleCalls: Map<string, Set<string>>;
}

const dirOf = (p: ProjectConfig) => normalDir(p.real_dir ?? p.dir);

/**
 * Every project whose files the PR changes, as the PR's config and the
 * default branch's (its list, or discovery) know them, minus those `selected`
 * for planning. A base project the PR's file no longer lists (renamed, moved,
 * dropped) still counts: a PR cannot make its change unplanned by editing the config.
 */
export function unplannedProjects(input: { head: Known; base: Known; changed: string[]; selected: ProjectConfig[] }): Unplanned[] {
  const { head, base, changed } = input;
  const key = (p: { name: string; workspace: string }) => `${p.name}\0${p.workspace}`;
  const selected = new Set(input.selected.map(key));
  const found = new Map<string, Unplanned>();
  const add = (p: ProjectConfig, plannable: boolean) => {
    if (!selected.has(key(p)) && !found.has(key(p))) found.set(key(p), { name: p.name, dir: p.dir, workspace: p.workspace, plannable });
  };
  for (const p of head.projects) if (isTouched(p, changed, head.moduleCalls, head.projects)) add(p, true);
  // The head's projects by name and by dir, in the head's order: a base project finds its own without a scan.
  const byName = new Map<string, ProjectConfig[]>();
  const byDir = new Map<string, ProjectConfig[]>();
  for (const p of head.projects) {
    byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
    byDir.set(dirOf(p), [...(byDir.get(dirOf(p)) ?? []), p]);
  }
  const order = new Map(head.projects.map((p, i) => [p, i]));
  for (const b of base.projects) {
    if (!isTouched(b, changed, base.moduleCalls, base.projects)) continue;
    // Its files planned in any workspace are planned: what applies on merge is what the PR's config plans.
    const same = [...new Set([...(byName.get(b.name) ?? []), ...(byDir.get(dirOf(b)) ?? [])])].sort((x, y) => order.get(x)! - order.get(y)!);
    if (!same.length) add(b, false);
    // Planned under any of its names is planned; otherwise it is named as the PR's config names it.
    else if (!same.some((p) => selected.has(key(p)))) add(same[0]!, true);
  }
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
