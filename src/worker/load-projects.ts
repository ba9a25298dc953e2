import type { RepoRef } from "../github/github.js";
import type { RepoMirrors } from "../github/repo-mirror.js";
import { discoverProjects } from "../projects/discover.js";
import { allModuleDirs, localModuleCalls } from "../projects/modules.js";
import { CONFIG_FILE, loadRepoConfig, type ConfigProblem } from "../settings/load-repo-config.js";
import type { RepoConfig } from "../settings/repo-config.js";

export type LoadedProjects =
  | { ok: true; config: RepoConfig; moduleCalls: Map<string, Set<string>> }
  | { ok: false; problems: ConfigProblem[] };

/** The repository's effective config at `sha`: .plangate.yml when present, else discovered projects. */
export async function loadProjects(mirrors: RepoMirrors, repo: RepoRef, sha: string, token: () => Promise<string>): Promise<LoadedProjects> {
  const mirror = await mirrors.ensureCommit(repo, sha, token);
  const moduleCalls = localModuleCalls(await mirrors.moduleSourceLines(mirror, sha));
  const text = await mirrors.readFile(mirror, sha, CONFIG_FILE);
  if (text !== undefined) {
    const loaded = loadRepoConfig(text);
    return loaded.ok ? { ok: true, config: loaded.config, moduleCalls } : loaded;
  }
  const projects = discoverProjects(await mirrors.listFiles(mirror, sha), allModuleDirs(moduleCalls));
  return { ok: true, config: { fromFile: false, projects, policies: [] }, moduleCalls };
}
