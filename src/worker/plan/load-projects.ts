import { FileTooLarge, type CommitReader, type TreeFile } from "../../github/commit-reader.js";
import type { RepoRef } from "../../github/github.js";
import type { RepoMirrors } from "../../github/repo-mirror.js";
import { discoverProjects } from "../../projects/discover.js";
import { realDir } from "../../projects/real-dir.js";
import { allModuleDirs, localModuleCalls, type ModuleSourceLine } from "../../projects/modules.js";
import { CONFIG_FILE, loadRepoConfig, type ConfigProblem } from "../../settings/load-repo-config.js";
import type { ProjectConfig, RepoConfig } from "../../settings/repo-config.js";
import type { BaseRules } from "../../settings/rules.js";

export type LoadedProjects =
  | { ok: true; config: RepoConfig; moduleCalls: Map<string, Set<string>> }
  | { ok: false; problems: ConfigProblem[] };

export interface PullInputs {
  loaded: LoadedProjects;
  base: BaseRules;
  /** The projects the default branch knows (its list, or discovered there) and their local modules: what a PR's changes touch. */
  baseProjects: { projects: ProjectConfig[]; moduleCalls: Map<string, Set<string>> };
}

/** Runs `read` over a reader of the repository's mirror, closed afterwards. */
async function withReader<T>(mirrors: RepoMirrors, repo: RepoRef, read: (reader: CommitReader) => Promise<T>): Promise<T> {
  const { reader } = await mirrors.reader(repo);
  try {
    return await read(reader);
  } finally {
    reader.close();
  }
}

/**
 * The repository's projects at `sha`: .plangate.yml's list when it has one,
 * else discovered projects (a file with only `defaults:` or `policies:` still
 * discovers).
 */
export async function loadProjects(mirrors: RepoMirrors, repo: RepoRef, sha: string, token: () => Promise<string>): Promise<LoadedProjects> {
  return withReader(mirrors, repo, async (reader) => {
    await mirrors.fetchCommits(repo, [sha], reader, token);
    return projectsAt(reader, sha);
  });
}

/**
 * A PR's projects at its head and the rules of its base branch at `baseSha`
 * (its head as GitHub has it now, never the PR's), after one fetch of
 * whichever of the two the mirror lacks.
 */
export async function loadPullInputs(mirrors: RepoMirrors, repo: RepoRef, headSha: string, baseSha: string, token: () => Promise<string>): Promise<PullInputs> {
  return withReader(mirrors, repo, async (reader) => {
    await mirrors.fetchCommits(repo, [headSha, baseSha], reader, token);
    return readPullInputs(reader, headSha, baseSha);
  });
}

/** loadPullInputs once both commits are in the mirror. */
export async function readPullInputs(reader: CommitReader, headSha: string, baseSha: string): Promise<PullInputs> {
  // The base after the head: the module source lines of files both share are read once.
  const seen = new Map<string, ModuleSourceLine[]>();
  const loaded = await projectsAt(reader, headSha, seen);
  const [base, baseLoaded] = await Promise.all([rulesAt(reader, baseSha), projectsAt(reader, baseSha, seen, { discoverIfInvalid: true })]);
  const baseProjects = baseLoaded.ok ? { projects: baseLoaded.config.projects, moduleCalls: baseLoaded.moduleCalls } : { projects: [], moduleCalls: new Map() };
  return { loaded, base, baseProjects };
}

/** The config's text at `sha`; a file too large to read is a problem of the config. */
async function configText(reader: CommitReader, sha: string): Promise<string | undefined | ConfigProblem> {
  try {
    return await reader.text(sha, CONFIG_FILE);
  } catch (error) {
    if (error instanceof FileTooLarge) return { line: 1, column: 1, message: error.message };
    throw error;
  }
}

/**
 * `seen`: module source lines per blob already read. `discoverIfInvalid`: a
 * broken config still yields the discovered projects (for the base, whose
 * projects tell what a PR touches).
 */
async function projectsAt(reader: CommitReader, sha: string, seen = new Map<string, ModuleSourceLine[]>(), opts: { discoverIfInvalid?: boolean } = {}): Promise<LoadedProjects> {
  const [rawText, files] = await Promise.all([configText(reader, sha), reader.files(sha)]);
  if (typeof rawText === "object" && !opts.discoverIfInvalid) return { ok: false, problems: [rawText] };
  const text = typeof rawText === "object" ? undefined : rawText;
  const moduleCalls = localModuleCalls(await moduleSourceLines(reader, files, seen));
  const parsed = text === undefined ? undefined : loadRepoConfig(text);
  if (parsed && !parsed.ok && !opts.discoverIfInvalid) return parsed;
  const loaded = parsed?.ok ? parsed : undefined;
  if (loaded?.config.projects.length) return { ok: true, config: await withRealDirs(reader, loaded.config, files), moduleCalls };
  const projects = discoverProjects(files.map((f) => f.path), allModuleDirs(moduleCalls));
  return { ok: true, config: { fromFile: !!loaded, projectsListed: false, projects, policies: loaded?.config.policies ?? [], defaults: loaded?.config.defaults }, moduleCalls };
}

const MODULE_SOURCE = /^\s*source\s*=/;
const REGULAR_FILE = /^100(644|755)$/;

/** Lines of the commit's terraform files that set a module `source` (for local module detection); binary files are skipped, as git grep does. */
async function moduleSourceLines(reader: CommitReader, files: TreeFile[], seen: Map<string, ModuleSourceLine[]>): Promise<ModuleSourceLine[]> {
  const terraform = files.filter((f) => f.path.endsWith(".tf") && REGULAR_FILE.test(f.mode));
  const unread = terraform.filter((f) => !seen.has(`${f.oid}\0${f.path}`));
  const bodies = await Promise.all(unread.map((f) => reader.blob(f.oid, f.path)));
  unread.forEach((f, i) => seen.set(`${f.oid}\0${f.path}`, sourceLines(f.path, bodies[i]!)));
  return terraform.flatMap((f) => seen.get(`${f.oid}\0${f.path}`)!);
}

function sourceLines(file: string, body: Buffer): ModuleSourceLine[] {
  if (body.subarray(0, 8000).includes(0)) return [];
  return body
    .toString("utf8")
    .split("\n")
    .filter((line) => MODULE_SOURCE.test(line))
    .map((text) => ({ file, text }));
}

/** The rules of the base branch at `sha` (its .plangate.yml), never of the PR. */
export async function loadBaseRules(mirrors: RepoMirrors, repo: RepoRef, sha: string, token: () => Promise<string>): Promise<BaseRules> {
  return withReader(mirrors, repo, async (reader) => {
    await mirrors.fetchCommits(repo, [sha], reader, token);
    return rulesAt(reader, sha);
  });
}

async function rulesAt(reader: CommitReader, sha: string): Promise<BaseRules> {
  const text = await configText(reader, sha);
  if (text === undefined) return { sha, state: "none" };
  if (typeof text === "object") return { sha, state: "invalid" };
  const loaded = loadRepoConfig(text);
  if (!loaded.ok) return { sha, state: "invalid" };
  const config = loaded.config.projects.length ? await withRealDirs(reader, loaded.config, await reader.files(sha)) : loaded.config;
  return { sha, state: "file", config };
}

const SYMLINK = "120000";

/**
 * The listed projects with `real_dir`: their dir with symlinks resolved in the
 * commit's tree, so a base rule keeps matching a project reached through a link.
 */
async function withRealDirs(reader: CommitReader, config: RepoConfig, files: TreeFile[]): Promise<RepoConfig> {
  const links = files.filter((f) => f.mode === SYMLINK);
  if (!links.length) return config;
  const targets = await Promise.all(links.map((f) => reader.blob(f.oid, f.path)));
  const map = new Map(links.map((f, i) => [f.path, targets[i]!.toString("utf8")]));
  return { ...config, projects: config.projects.map((p) => ({ ...p, real_dir: realDir(p.dir, map) })) };
}

/** The rules of a branch as it stands now: its head is fetched, then its .plangate.yml read. */
export async function loadBranchRules(mirrors: RepoMirrors, repo: RepoRef, branch: string, token: () => Promise<string>): Promise<BaseRules> {
  const head = await mirrors.branchHead(repo, branch, token);
  return withReader(mirrors, repo, (reader) => rulesAt(reader, head.sha));
}
