import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { execute } from "../sandbox/exec.js";
import { scrubCheckout } from "../sandbox/scrub.js";
import { DEFAULT_INPUT_LIMITS, type InputLimits } from "../settings/input-limits.js";
import { boundedExtract } from "./bounded-extract.js";
import { CommitReader, CommitTooLarge } from "./commit-reader.js";
import { deriveExport, foldersOf, parseTreeChanges, underivable } from "./derived-export.js";
import { fetchPack, NotProtocolV2 } from "./pack-fetch.js";
import type { RepoRef } from "../github/github.js";

const GIT_TIMEOUT_MS = 10 * 60_000;
const SAFE_NAME = /^[A-Za-z0-9._-]+$/;
const SAFE_BRANCH = /^[A-Za-z0-9._/-]{1,250}$/;
const SHA = /^[0-9a-f]{40}$/;
/** More .gitattributes than this and a commit's export is derived no more (each is read and judged). */
const MAX_ATTRIBUTE_FILES = 32;
/** At most this many commits a fetch says the mirror has (enough for the server to send only what is new). */
const MAX_HAVES = 256;
/** How long a mirror stays free of fetches before git's housekeeping of it runs. */
const HOUSEKEEPING_AFTER_MS = 60_000;
/**
 * A fetched commit's ref (refs/plangate/<sha>) is dropped by housekeeping
 * once the commit is older than this (git's committer date): the mirror's
 * refs stay bounded, and its objects stay for git's two-week grace; a later
 * plan of such a commit fetches it again. Branch heads are kept.
 */
const KEEP_COMMIT_REFS_DAYS = 30;
const COMMIT_REF = /^refs\/plangate\/[0-9a-f]{40}$/;

/** The HTTP Authorization of an installation token for git (GitHub's form: user x-access-token). */
const basicAuth = (token: string) => `Basic ${Buffer.from(`x-access-token:${token}`).toString("base64")}`;

/** A lock older than this was left by a process that died while writing its ref. */
const STALE_LOCK_MS = 10 * 60_000;

/**
 * Writes a loose ref as git does: its `.lock` file created exclusively (git's
 * own lock: git and its housekeeping leave the ref alone meanwhile), then
 * renamed into place. A lock held by another writer (of the same commit id)
 * is left to it; a stale one is removed first.
 */
async function writeLooseRef(ref: string, sha: string, retried = false): Promise<void> {
  const lock = `${ref}.lock`;
  try {
    await writeFile(lock, `${sha}\n`, { flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const held = await stat(lock).catch(() => undefined);
    if (retried || (held && Date.now() - held.mtimeMs < STALE_LOCK_MS)) return;
    await rm(lock, { force: true });
    return writeLooseRef(ref, sha, true);
  }
  await rename(lock, ref);
}

/** The config of a bare repository as `git init --bare` writes it (no template: no hooks, no description). */
const BARE_CONFIG = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n";

/**
 * Makes an empty bare repository as `git init --bare` does, without starting
 * git: a fresh process's first plan of a repository otherwise waits for that
 * process (and the main thread for its spawn). HEAD is written last, renamed
 * into place: it is what says the mirror exists. Two callers at once write
 * the same files.
 */
async function initBare(dir: string): Promise<void> {
  await Promise.all(["objects/info", "objects/pack", "refs/heads", "refs/tags"].map((sub) => mkdir(path.join(dir, sub), { recursive: true })));
  const suffix = `.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await writeFile(path.join(dir, `config${suffix}`), BARE_CONFIG);
  await rename(path.join(dir, `config${suffix}`), path.join(dir, "config"));
  await writeFile(path.join(dir, `HEAD${suffix}`), "ref: refs/heads/main\n");
  await rename(path.join(dir, `HEAD${suffix}`), path.join(dir, "HEAD"));
}

/** The newest commits the mirror holds under refs/plangate (branch heads first), at most MAX_HAVES: a fetch's "have" lines. */
async function mirrorTips(dir: string): Promise<string[]> {
  const refs = path.join(dir, "refs", "plangate");
  const [entries, heads, packed] = await Promise.all([
    readdir(refs, { withFileTypes: true }).catch(() => []),
    readdir(path.join(refs, "heads"), { recursive: true, withFileTypes: true }).catch(() => []),
    readFile(path.join(dir, "packed-refs"), "utf8").catch(() => ""),
  ]);
  const branchTips = await Promise.all(heads.filter((e) => e.isFile()).map((e) => readFile(path.join(e.parentPath ?? e.path, e.name), "utf8").then((t) => t.trim(), () => "")));
  let loose = entries.filter((e) => e.isFile() && SHA.test(e.name)).map((e) => e.name);
  if (loose.length > MAX_HAVES) {
    const when = new Map(await Promise.all(loose.map(async (sha) => [sha, (await stat(path.join(refs, sha)).catch(() => undefined))?.mtimeMs ?? 0] as const)));
    loose = loose.sort((a, b) => when.get(b)! - when.get(a)!);
  }
  // Packed (by housekeeping): branch heads first, as for loose refs.
  const packedLines = packed.split("\n").filter((line) => line.includes(" refs/plangate/"));
  const isHead = (line: string) => line.includes(" refs/plangate/heads/");
  const packedTips = [...packedLines.filter(isHead), ...packedLines.filter((line) => !isHead(line))].map((line) => line.slice(0, 40));
  return [...new Set([...branchTips, ...loose, ...packedTips].filter((sha) => SHA.test(sha)))].slice(0, MAX_HAVES);
}

/**
 * One bare mirror per repository under the data dir: the first run fetches,
 * later runs fetch only the new commit. The installation token travels as an
 * HTTP header through git's environment, never in a URL, argument or log.
 */
export class RepoMirrors {
  private readonly housekeeping = new Map<string, NodeJS.Timeout>();

  /**
   * `housekeepingAfterMs`: how long a mirror is left without fetches before
   * `git maintenance run --auto` (tests shorten it). `limits`: what one
   * commit may cost to read and export (its readers carry them too).
   */
  constructor(
    private readonly root: string,
    private readonly gitWebUrl: string,
    private readonly housekeepingAfterMs = HOUSEKEEPING_AFTER_MS,
    readonly limits: InputLimits = DEFAULT_INPUT_LIMITS,
  ) {}

  private gitEnv(token?: string): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.root,
      GIT_TERMINAL_PROMPT: "0",
      GIT_CONFIG_NOSYSTEM: "1",
    };
    if (token) Object.assign(env, { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "http.extraHeader", GIT_CONFIG_VALUE_0: `Authorization: ${basicAuth(token)}` });
    return env;
  }

  private async git(args: string[], token?: string): Promise<string> {
    const result = await execute({ argv: ["git", ...args], cwd: this.root, env: this.gitEnv(token), timeoutMs: GIT_TIMEOUT_MS });
    // Named by its subcommand ("git fetch failed: ..."), not by an option before it.
    if (result.exitCode !== 0) throw new Error(`git ${args.find((a) => !a.startsWith("-")) ?? args[0]} failed: ${result.output.trim()}`);
    return result.output;
  }

  private async mirrorDir(repo: RepoRef): Promise<string> {
    if (!SAFE_NAME.test(repo.owner) || !SAFE_NAME.test(repo.name)) throw new Error(`refusing unexpected repository: ${repo.owner}/${repo.name}`);
    const dir = path.join(this.root, repo.owner, `${repo.name}.git`);
    if (!existsSync(path.join(dir, "HEAD"))) await initBare(dir);
    return dir;
  }

  private remoteUrl(repo: RepoRef): string {
    return `${this.gitWebUrl}/${repo.owner}/${repo.name}.git`;
  }

  private checkSha(repo: RepoRef, sha: string): void {
    if (!SHA.test(sha)) throw new Error(`refusing unexpected commit: ${repo.owner}/${repo.name}@${sha}`);
  }

  /**
   * One fetch of commits by id, in one HTTP request (fetchPack; by git when
   * the server does not speak protocol version 2). A ref per commit keeps
   * fetched objects safe from gc and tells later fetches what the mirror has;
   * concurrent fetches touch different refs.
   */
  private async fetchByIds(dir: string, repo: RepoRef, shas: string[], token: () => Promise<string>): Promise<void> {
    const byGit = () => this.fetch(dir, repo, shas.map((sha) => `+${sha}:refs/plangate/${sha}`), token);
    if (!/^https?:\/\//.test(this.gitWebUrl)) return byGit(); // a local repository (tests, the CLI)
    const [authorization, haves] = await Promise.all([token().then(basicAuth), mirrorTips(dir)]);
    try {
      await fetchPack({ url: this.remoteUrl(repo), authorization, wants: shas, haves, gitDir: dir, env: this.gitEnv(), timeoutMs: GIT_TIMEOUT_MS });
    } catch (error) {
      if (error instanceof NotProtocolV2) return byGit();
      throw new Error(`git fetch failed: ${(error as Error).message}`);
    } finally {
      this.keepHouseLater(dir);
    }
    await mkdir(path.join(dir, "refs", "plangate"), { recursive: true });
    await Promise.all(shas.map((sha) => writeLooseRef(path.join(dir, "refs", "plangate", sha), sha)));
  }

  /**
   * A fetch into the mirror. git's housekeeping (packing loose objects, at
   * git's own thresholds) is not left to the fetch, which would wait for it
   * on a plan's way: it runs once the mirror has gone a while without fetches.
   */
  private async fetch(dir: string, repo: RepoRef, refspecs: string[], token: () => Promise<string>): Promise<void> {
    try {
      await this.git([`--git-dir=${dir}`, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance", this.remoteUrl(repo), ...refspecs], await token());
    } finally {
      this.keepHouseLater(dir);
    }
  }

  private keepHouseLater(dir: string): void {
    clearTimeout(this.housekeeping.get(dir));
    const timer = setTimeout(() => {
      this.housekeeping.delete(dir);
      // A failure leaves the mirror as it was (only slower to read); the next quiet spell tries again.
      void this.dropOldCommitRefs(dir)
        .catch(() => undefined)
        .then(() => this.gitIn(dir, ["maintenance", "run", "--auto", "--quiet"]))
        .catch(() => undefined);
    }, this.housekeepingAfterMs);
    timer.unref(); // a process that is done does not wait for it
    this.housekeeping.set(dir, timer);
  }

  /** Drops the refs of fetched commits older than KEEP_COMMIT_REFS_DAYS, loose or packed, in one `git update-ref --stdin`. */
  private async dropOldCommitRefs(dir: string): Promise<void> {
    const { output } = await this.gitIn(dir, ["for-each-ref", "--format=%(committerdate:unix) %(refname)", "refs/plangate/"]);
    const cutoff = Date.now() / 1000 - KEEP_COMMIT_REFS_DAYS * 86_400;
    const old = output
      .split("\n")
      .map((line) => line.split(" "))
      .filter(([date, ref]) => ref && COMMIT_REF.test(ref) && Number(date) < cutoff)
      .map(([, ref]) => `delete ${ref}\n`);
    if (old.length) await this.gitIn(dir, ["update-ref", "--stdin"], [0], old.join(""));
  }

  /** Makes sure the mirror holds `sha`, fetching it when missing; returns the mirror's path. */
  async ensureCommit(repo: RepoRef, sha: string, token: () => Promise<string>): Promise<string> {
    this.checkSha(repo, sha);
    const dir = await this.mirrorDir(repo);
    if (!(await this.holds(dir, sha))) await this.fetchByIds(dir, repo, [sha], token);
    return dir;
  }

  /**
   * The current head of a branch, fetched into the mirror (for the base
   * branch's rules: read there, never from the PR).
   */
  async branchHead(repo: RepoRef, branch: string, token: () => Promise<string>): Promise<{ mirror: string; sha: string }> {
    if (!SAFE_BRANCH.test(branch) || branch.split("/").some((part) => part === ".." || part.startsWith(".") || part.endsWith(".lock"))) {
      throw new Error(`refusing unexpected branch name: ${branch}`);
    }
    const dir = await this.mirrorDir(repo);
    await this.fetch(dir, repo, [`+refs/heads/${branch}:refs/plangate/heads/${branch}`], token);
    const { output } = await this.gitIn(dir, ["rev-parse", "--verify", `refs/plangate/heads/${branch}^{commit}`]);
    return { mirror: dir, sha: output.trim() };
  }

  /**
   * The commit a PR with head `headSha` landed on at `mergeSha`: the base
   * branch as it stood before the merge. For a merge commit or a squash it is
   * the first parent; a rebase merge replays each of the PR's commits keeping
   * its author (name, e-mail, date), so the commits on `mergeSha`'s
   * first-parent line that match the PR's own, newest first, are the PR's and
   * the base is the one below them (never a commit the PR made).
   */
  async landedOn(repo: RepoRef, mergeSha: string, headSha: string, token: () => Promise<string>): Promise<string> {
    const mirror = await this.ensureCommit(repo, mergeSha, token);
    await this.ensureCommit(repo, headSha, token);
    const format = ["--date=raw", "--format=%H%x1f%an%x1f%ae%x1f%ad"];
    const entries = (output: string) => output.split("\n").filter(Boolean).map((line) => ({ sha: line.slice(0, line.indexOf("\x1f")), author: line.slice(line.indexOf("\x1f")) }));
    const own = entries((await this.gitIn(mirror, ["log", "--first-parent", "--no-merges", ...format, headSha, "--not", mergeSha])).output);
    const line = entries((await this.gitIn(mirror, ["log", "--first-parent", ...format, `--max-count=${own.length + 2}`, mergeSha])).output);
    let replayed = 0;
    while (replayed < own.length && replayed + 1 < line.length && line[replayed]!.author === own[replayed]!.author) replayed++;
    const base = line[Math.max(replayed, 1)];
    if (!base) throw new Error(`the merge commit ${mergeSha.slice(0, 7)} has no parent to read the base branch's rules at`);
    return base.sha;
  }

  /**
   * What a merge queue stacked on `base`: the commits on `head`'s first-parent
   * line that `base` lacks (newest first), each with the files it changes
   * against its first parent. Both commits are fetched first.
   */
  async stackedCommits(repo: RepoRef, base: string, head: string, token: () => Promise<string>): Promise<{ sha: string; files: string[] }[]> {
    const mirror = await this.ensureCommit(repo, head, token);
    await this.ensureCommit(repo, base, token);
    const { output } = await this.gitIn(mirror, ["rev-list", "--first-parent", head, `^${base}`]);
    const shas = output.split("\n").filter((line) => /^[0-9a-f]{40}$/.test(line));
    const stacked: { sha: string; files: string[] }[] = [];
    for (const sha of shas) {
      const diff = await this.gitIn(mirror, ["diff", "--no-renames", "--name-only", "-z", `${sha}^1`, sha]);
      stacked.push({ sha, files: diff.output.split("\0").filter(Boolean) });
    }
    return stacked;
  }

  /** The files that differ between two commits (both fetched first). */
  async changedBetween(repo: RepoRef, from: string, to: string, token: () => Promise<string>): Promise<string[]> {
    // Both asked of the mirror at once (usually both there: one wait, not two).
    const [mirror] = await Promise.all([this.ensureCommit(repo, to, token), this.ensureCommit(repo, from, token)]);
    const diff = await this.gitIn(mirror, ["diff", "--no-renames", "--name-only", "-z", from, to]);
    return diff.output.split("\0").filter(Boolean);
  }

  private async holds(mirror: string, sha: string): Promise<boolean> {
    const present = await execute({ argv: ["git", `--git-dir=${mirror}`, "cat-file", "-e", `${sha}^{commit}`], cwd: this.root, env: this.gitEnv(), timeoutMs: 30_000 });
    return present.exitCode === 0;
  }

  private async gitIn(mirror: string, args: string[], okCodes = [0], input?: string): Promise<{ code: number | null; output: string }> {
    const result = await execute({ argv: ["git", `--git-dir=${mirror}`, ...args], cwd: this.root, env: this.gitEnv(), timeoutMs: GIT_TIMEOUT_MS, maxOutputBytes: 64 * 1024 * 1024, input });
    if (!okCodes.includes(result.exitCode ?? -1)) throw new Error(`git ${args[0]} failed: ${result.output.trim()}`);
    return { code: result.exitCode, output: result.output };
  }

  /** A reader of the repository's mirror (one process for many reads): close it when done. */
  async reader(repo: RepoRef): Promise<{ mirror: string; reader: CommitReader }> {
    const mirror = await this.mirrorDir(repo);
    return { mirror, reader: new CommitReader(mirror, this.gitEnv(), GIT_TIMEOUT_MS, this.limits) };
  }

  /** Makes sure the mirror holds every commit of `shas`, in one fetch of exactly those its `reader` says it lacks. */
  async fetchCommits(repo: RepoRef, shas: string[], reader: CommitReader | undefined, token: () => Promise<string>): Promise<void> {
    for (const sha of shas) this.checkSha(repo, sha);
    const dir = await this.mirrorDir(repo);
    // Without a reader every commit is asked for (a pushed head is new: asking the mirror first would delay the fetch).
    const held = await Promise.all(shas.map((sha) => reader?.holds(sha) ?? false));
    const missing = [...new Set(shas.filter((_, i) => !held[i]))];
    if (missing.length) await this.fetchByIds(dir, repo, missing, token);
  }

  /**
   * Writes the tree of `sha` into `into` (no .git inside: the sandbox gets files only),
   * scrubbed of terraform tooling (scrubCheckout); returns the scrubbed paths.
   * A commit whose export passes PLANGATE_MAX_COMMIT_SIZE is refused
   * (CommitTooLarge) and what was written of it removed.
   * `readOnly` (when plangate runs as root): everything written is root's and
   * unwritable, as it is extracted. `reader`: an open reader of this mirror to
   * measure the commit through (one that has listed its files answers from
   * what it kept, and no reader is started); the caller closes it.
   */
  async checkout(repo: RepoRef, sha: string, into: string, token: () => Promise<string>, options: { readOnly?: boolean; reader?: CommitReader } = {}): Promise<string[]> {
    this.checkSha(repo, sha);
    const mirror = await this.mirrorDir(repo);
    const readOnly = !!options.readOnly && process.getuid?.() === 0;
    await mkdir(into, { recursive: true });
    // Measured before a byte is written (an oversized commit writes nothing).
    await this.measureFetched(repo, mirror, sha, token, options.reader);
    const extracted = await this.extract(mirror, sha, into, readOnly);
    if (extracted.tooLarge) return this.refuseExport(sha, into);
    if (extracted.exitCode !== 0) throw new Error(`checkout of ${sha} failed: ${extracted.output.trim() || `exit ${extracted.exitCode}`}`);
    const scrubbed = await scrubCheckout(into);
    if (readOnly) await chmod(into, 0o555);
    return scrubbed;
  }

  /**
   * Writes the read-only export of `sha` into `into` (which must not exist)
   * from `from`, a read-only export of an earlier commit of the same
   * repository, writing only the paths that differ (deriveExport): what
   * `checkout` would write, with PLANGATE_MAX_COMMIT_SIZE measured the same
   * way. Returns why not (and leaves nothing at `into`) when plangate does
   * not run as root, the commits differ too much or in a way it does not
   * derive, or deriving fails: the caller checks the commit out whole.
   */
  async checkoutFrom(repo: RepoRef, sha: string, into: string, from: { sha: string; tree: string }, token: () => Promise<string>, options: { reader?: CommitReader } = {}): Promise<string | undefined> {
    this.checkSha(repo, sha);
    this.checkSha(repo, from.sha);
    if (process.getuid?.() !== 0) return "plangate does not run as root";
    const mirror = await this.mirrorDir(repo);
    const reader = options.reader ?? new CommitReader(mirror, this.gitEnv(), GIT_TIMEOUT_MS, this.limits);
    try {
      // Measured as a whole export is (CommitTooLarge goes to the caller); the reader keeps the trees it read.
      await this.measureFetched(repo, mirror, sha, token, reader);
      return await this.derive(mirror, sha, into, from, reader);
    } finally {
      if (!options.reader) reader.close();
    }
  }

  /** checkoutFrom's derivation over a measured commit: why not, or undefined once `into` is written. */
  private async derive(mirror: string, sha: string, into: string, from: { sha: string; tree: string }, reader: CommitReader): Promise<string | undefined> {
    try {
      const diff = await this.gitIn(mirror, ["diff-tree", "-r", "-z", "--raw", "--no-renames", "--no-commit-id", from.sha, sha]);
      const changes = parseTreeChanges(diff.output);
      const tree = await reader.boundedFiles(sha, this.limits.maxCommitBytes);
      const files = tree.map((f) => f.path);
      // Each .gitattributes read by its object id (a PR's names never go into a revision).
      const attributeFiles = tree.filter((f) => path.posix.basename(f.path) === ".gitattributes");
      if (attributeFiles.length > MAX_ATTRIBUTE_FILES) return `${attributeFiles.length} .gitattributes files`;
      const attributes = await Promise.all(attributeFiles.map(async (f) => (await reader.blob(f.oid, f.path)).toString("utf8")));
      const refused = underivable(changes, files, attributes);
      if (refused) return refused;
      await deriveExport({ from: from.tree, into, changes, folders: foldersOf(files), blob: (oid, shown) => reader.blob(oid, shown), env: this.gitEnv(), timeoutMs: GIT_TIMEOUT_MS });
      return undefined;
    } catch (error) {
      await rm(into, { recursive: true, force: true });
      return error instanceof Error ? error.message : String(error);
    }
  }

  /** Measures `sha` (measure), fetching it first when the mirror lacks it. */
  private async measureFetched(repo: RepoRef, mirror: string, sha: string, token: () => Promise<string>, reader?: CommitReader): Promise<void> {
    if (await this.measure(mirror, sha, reader)) return;
    await this.ensureCommit(repo, sha, token);
    await this.measure(mirror, sha, reader);
  }

  /** False when the mirror lacks `sha`; CommitTooLarge when it is over PLANGATE_MAX_COMMIT_SIZE (CommitReader.boundedFiles). */
  private async measure(mirror: string, sha: string, open?: CommitReader): Promise<boolean> {
    const reader = open ?? new CommitReader(mirror, this.gitEnv(), GIT_TIMEOUT_MS, this.limits);
    try {
      if (!(await reader.holds(sha))) return false;
      await reader.boundedFiles(sha, this.limits.maxCommitBytes);
      return true;
    } finally {
      if (!open) reader.close();
    }
  }

  private async refuseExport(sha: string, into: string): Promise<never> {
    await rm(into, { recursive: true, force: true });
    throw new CommitTooLarge(sha, this.limits.maxCommitBytes);
  }

  /** `git archive | tar -x`, stopped at PLANGATE_MAX_COMMIT_SIZE (boundedExtract): the tar stream's headers count too. */
  private extract(mirror: string, sha: string, into: string, readOnly: boolean) {
    return boundedExtract({ mirror, sha, into, readOnly, maxBytes: this.limits.maxCommitBytes, cwd: this.root, env: this.gitEnv(), timeoutMs: GIT_TIMEOUT_MS });
  }
}
