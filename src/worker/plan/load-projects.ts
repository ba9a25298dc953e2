import { FileTooLarge, MAX_TEXT_BYTES, type CommitReader, type TreeFile } from "../../git/commit-reader.js";
import type { RepoRef } from "../../github/github.js";
import type { RepoMirrors } from "../../git/repo-mirror.js";
import { discoverProjects } from "../../projects/discover.js";
import { realDir } from "../../projects/real-dir.js";
import { allModuleDirs, localModuleCalls, type ModuleSourceLine } from "../../projects/modules.js";
import { InputRefused } from "../../settings/input-limits.js";
import { CONFIG_FILE, type ConfigProblem } from "../../settings/load-repo-config.js";
import { readRepoConfig } from "../../settings/read-repo-config.js";
import { ENGINES } from "../../engines/registry.js";
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
  const seen = new Map<string, string[]>();
  const loaded = await projectsAt(reader, headSha, seen);
  // One read of the base gives both its rules and the projects it knows.
  const { loaded: baseLoaded, state } = await commitConfig(reader, baseSha, seen, { discoverIfInvalid: true });
  if (!baseLoaded.ok) return { loaded, base: { sha: baseSha, state: "invalid" }, baseProjects: { projects: [], moduleCalls: new Map() } };
  const base: BaseRules = state === "file" ? { sha: baseSha, state, config: baseLoaded.config } : { sha: baseSha, state };
  return { loaded, base, baseProjects: { projects: baseLoaded.config.projects, moduleCalls: baseLoaded.moduleCalls } };
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

/** More projects than PLANGATE_MAX_PROJECTS allows: the plan fails naming it. */
function refuseProjects(sha: string, count: number, max: number): void {
  if (count > max) throw new InputRefused(`commit ${sha.slice(0, 7)} has ${count} projects; a plan covers at most PLANGATE_MAX_PROJECTS (${max})`);
}

/**
 * The commit's projects; a commit over PLANGATE_MAX_COMMIT_SIZE or
 * PLANGATE_MAX_PROJECTS is refused (InputRefused). `seen`: module source
 * lines per blob already read. `discoverIfInvalid`: a broken config still
 * yields the discovered projects (for the base, whose projects tell what a
 * PR touches).
 */
async function projectsAt(reader: CommitReader, sha: string, seen = new Map<string, string[]>(), opts: { discoverIfInvalid?: boolean } = {}): Promise<LoadedProjects> {
  return (await commitConfig(reader, sha, seen, opts)).loaded;
}

/** projectsAt, and the state of the commit's .plangate.yml as rules (BaseRules' state). */
async function commitConfig(reader: CommitReader, sha: string, seen: Map<string, string[]>, opts: { discoverIfInvalid?: boolean }): Promise<{ loaded: LoadedProjects; state: BaseRules["state"] }> {
  const [rawText, files] = await Promise.all([configText(reader, sha), reader.boundedFiles(sha)]);
  if (typeof rawText === "object" && !opts.discoverIfInvalid) return { loaded: { ok: false, problems: [rawText] }, state: "invalid" };
  const text = typeof rawText === "object" ? undefined : rawText;
  const { maxProjects } = reader.limits;
  const parsed = text === undefined ? undefined : await readRepoConfig(text, ENGINES.names);
  if (parsed && !parsed.ok && !opts.discoverIfInvalid) return { loaded: parsed, state: "invalid" };
  const loaded = parsed?.ok ? parsed : undefined;
  const state = loaded ? "file" : rawText === undefined ? "none" : "invalid";
  if (loaded) refuseProjects(sha, loaded.config.projects.length, maxProjects);
  const moduleCalls = localModuleCalls(await moduleSourceLines(reader, files, seen));
  if (loaded?.config.projects.length) return { loaded: { ok: true, config: await withRealDirs(reader, loaded.config, files), moduleCalls }, state };
  const projects = discoverProjects(files.map((f) => f.path), allModuleDirs(moduleCalls), ENGINES.all);
  refuseProjects(sha, projects.length, maxProjects);
  // A file without projects still gives its rule keys (policies, defaults, apply_branches); the projects are discovered.
  const config: RepoConfig = { ...loaded?.config, fromFile: !!loaded, projectsListed: false, projects, policies: loaded?.config.policies ?? [] };
  return { loaded: { ok: true, config, moduleCalls }, state };
}

/** A line setting `source =` (spaces other than line breaks before and around it), found without splitting the file into lines. */
const MODULE_SOURCE_LINES = /^[^\S\n]*source[^\S\n]*=[^\n]*/gm;
/**
 * Terraform files read at once for their module sources: as many as fit in
 * this many bytes (their sizes are known from boundedFiles; one of unknown
 * size counts as MAX_TEXT_BYTES), up to BLOBS_AT_ONCE. Thousands of small
 * files are read in a few round trips to git, never more than this in memory.
 */
const BLOB_BYTES_AT_ONCE = 8 * MAX_TEXT_BYTES;
const BLOBS_AT_ONCE = 512;
const REGULAR_FILE = /^100(644|755)$/;

/** The distinct lines of a terraform file that set a module `source`; none for a binary file, as git grep does. */
function sourceLinesOf(body: Buffer): string[] {
  if (body.subarray(0, 8000).includes(0)) return [];
  return [...new Set(Array.from(body.toString("utf8").matchAll(MODULE_SOURCE_LINES), (m) => m[0]))];
}

/**
 * Lines of the commit's terraform files that set a module `source` (for
 * local module detection). Each distinct file is read once, a few at a time
 * (a blob at 250 paths is not 250 blobs in memory), and once for the head and
 * the base (`seen`, per blob); a file over MAX_TEXT_BYTES is refused
 * (FileTooLarge, an InputRefused).
 */
async function moduleSourceLines(reader: CommitReader, files: TreeFile[], seen: Map<string, string[]>): Promise<ModuleSourceLine[]> {
  const terraform = files.filter((f) => f.path.endsWith(".tf") && REGULAR_FILE.test(f.mode));
  const distinct = [...new Map(terraform.filter((f) => !seen.has(f.oid)).map((f) => [f.oid, f])).values()];
  for (let at = 0; at < distinct.length; ) {
    let bytes = 0;
    let end = at;
    while (end < distinct.length && end - at < BLOBS_AT_ONCE && (end === at || bytes + (distinct[end]!.size ?? MAX_TEXT_BYTES) <= BLOB_BYTES_AT_ONCE)) bytes += distinct[end++]!.size ?? MAX_TEXT_BYTES;
    const batch = distinct.slice(at, end);
    at = end;
    const lines = await Promise.all(batch.map(async (f) => sourceLinesOf(await reader.blob(f.oid, f.path))));
    batch.forEach((f, i) => seen.set(f.oid, lines[i]!));
  }
  return terraform.flatMap((f) => seen.get(f.oid)!.map((text) => ({ file: f.path, text })));
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
  const loaded = await readRepoConfig(text, ENGINES.names);
  if (!loaded.ok) return { sha, state: "invalid" };
  const config = loaded.config.projects.length ? await withRealDirs(reader, loaded.config, await reader.boundedFiles(sha)) : loaded.config;
  return { sha, state: "file", config };
}

const SYMLINK = "120000";
/** Symlink targets read at once (each is a path: small). */
const LINKS_AT_ONCE = 64;

/**
 * The listed projects with `real_dir`: their dir with symlinks resolved in the
 * commit's tree, so a base rule keeps matching a project reached through a link.
 */
async function withRealDirs(reader: CommitReader, config: RepoConfig, files: TreeFile[]): Promise<RepoConfig> {
  const links = files.filter((f) => f.mode === SYMLINK);
  if (!links.length) return config;
  const map = new Map<string, string>();
  for (let at = 0; at < links.length; at += LINKS_AT_ONCE) {
    const batch = links.slice(at, at + LINKS_AT_ONCE);
    const targets = await Promise.all(batch.map((f) => reader.blob(f.oid, f.path)));
    batch.forEach((f, i) => map.set(f.path, targets[i]!.toString("utf8")));
  }
  return { ...config, projects: config.projects.map((p) => ({ ...p, real_dir: realDir(p.dir, map) })) };
}

/** The rules of a branch as it stands now: its head is fetched, then its .plangate.yml read. */
export async function loadBranchRules(mirrors: RepoMirrors, repo: RepoRef, branch: string, token: () => Promise<string>): Promise<BaseRules> {
  const head = await mirrors.branchHead(repo, branch, token);
  return withReader(mirrors, repo, (reader) => rulesAt(reader, head.sha));
}
