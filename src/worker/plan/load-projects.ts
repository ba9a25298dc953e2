import type { RepoRef } from "../../github/github.js";
import type { RepoMirrors } from "../../github/repo-mirror.js";
import { discoverProjects } from "../../projects/discover.js";
import { allModuleDirs, localModuleCalls } from "../../projects/modules.js";
import { CONFIG_FILE, loadRepoConfig, type ConfigProblem } from "../../settings/load-repo-config.js";
import type { RepoConfig } from "../../settings/repo-config.js";
import type { BaseRules } from "../../settings/rules.js";

export type LoadedProjects =
  | { ok: true; config: RepoConfig; moduleCalls: Map<string, Set<string>> }
  | { ok: false; problems: ConfigProblem[] };

/**
 * The repository's projects at `sha`: .plangate.yml's list when it has one,
 * else discovered projects (a file with only `defaults:` or `policies:` still
 * discovers).
 */
export async function loadProjects(mirrors: RepoMirrors, repo: RepoRef, sha: string, token: () => Promise<string>): Promise<LoadedProjects> {
  return projectsAt(mirrors, await mirrors.ensureCommit(repo, sha, token), sha);
}

/**
 * A PR's projects at its head and the rules of its base branch as it stands
 * now (never the PR's), from one fetch of both.
 */
export async function loadPullInputs(mirrors: RepoMirrors, repo: RepoRef, headSha: string, baseBranch: string, token: () => Promise<string>): Promise<PullInputs> {
  return readPullInputs(mirrors, await mirrors.fetchCommitAndBranch(repo, headSha, baseBranch, token), headSha);
}

export interface PullInputs {
  loaded: LoadedProjects;
  base: BaseRules;
}

/** loadPullInputs once the fetch is done (RepoMirrors.fetchCommitAndBranch). */
export async function readPullInputs(mirrors: RepoMirrors, fetched: { mirror: string; branchSha: string }, headSha: string): Promise<PullInputs> {
  const [loaded, base] = await Promise.all([projectsAt(mirrors, fetched.mirror, headSha), rulesAt(mirrors, fetched.mirror, fetched.branchSha)]);
  return { loaded, base };
}

async function projectsAt(mirrors: RepoMirrors, mirror: string, sha: string): Promise<LoadedProjects> {
  // Three reads of the same commit, side by side (the file list is needed only to discover projects, but costs no wait).
  const [sources, text, files] = await Promise.all([mirrors.moduleSourceLines(mirror, sha), mirrors.readFile(mirror, sha, CONFIG_FILE), mirrors.listFiles(mirror, sha)]);
  const moduleCalls = localModuleCalls(sources);
  const loaded = text === undefined ? undefined : loadRepoConfig(text);
  if (loaded && !loaded.ok) return loaded;
  if (loaded?.config.projects.length) return { ok: true, config: loaded.config, moduleCalls };
  const projects = discoverProjects(files, allModuleDirs(moduleCalls));
  return { ok: true, config: { fromFile: !!loaded, projectsListed: false, projects, policies: loaded?.config.policies ?? [], defaults: loaded?.config.defaults }, moduleCalls };
}

/** The rules of the base branch at `sha` (its .plangate.yml), never of the PR. */
export async function loadBaseRules(mirrors: RepoMirrors, repo: RepoRef, sha: string, token: () => Promise<string>): Promise<BaseRules> {
  return rulesAt(mirrors, await mirrors.ensureCommit(repo, sha, token), sha);
}

async function rulesAt(mirrors: RepoMirrors, mirror: string, sha: string): Promise<BaseRules> {
  const text = await mirrors.readFile(mirror, sha, CONFIG_FILE);
  if (text === undefined) return { sha, state: "none" };
  const loaded = loadRepoConfig(text);
  return loaded.ok ? { sha, state: "file", config: loaded.config } : { sha, state: "invalid" };
}

/** The rules of a branch as it stands now: its head is fetched, then its .plangate.yml read. */
export async function loadBranchRules(mirrors: RepoMirrors, repo: RepoRef, branch: string, token: () => Promise<string>): Promise<BaseRules> {
  const head = await mirrors.branchHead(repo, branch, token);
  return rulesAt(mirrors, head.mirror, head.sha); // just fetched: no need to look for the commit again
}
