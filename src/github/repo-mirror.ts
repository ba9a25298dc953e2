import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import path from "node:path";
import { execute } from "../engines/exec.js";
import { scrubCheckout } from "../engines/scrub.js";
import type { RepoRef } from "./github.js";

const GIT_TIMEOUT_MS = 10 * 60_000;
const SAFE_NAME = /^[A-Za-z0-9._-]+$/;
const SAFE_BRANCH = /^[A-Za-z0-9._/-]{1,250}$/;
const SHA = /^[0-9a-f]{40}$/;

/**
 * One bare mirror per repository under the data dir: the first run fetches,
 * later runs fetch only the new commit. The installation token travels as an
 * HTTP header through git's environment, never in a URL, argument or log.
 */
export class RepoMirrors {
  constructor(
    private readonly root: string,
    private readonly gitWebUrl: string,
  ) {}

  private gitEnv(token?: string): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.root,
      GIT_TERMINAL_PROMPT: "0",
      GIT_CONFIG_NOSYSTEM: "1",
    };
    if (token) {
      const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
      Object.assign(env, { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "http.extraHeader", GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` });
    }
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
    if (!existsSync(path.join(dir, "HEAD"))) {
      await mkdir(dir, { recursive: true });
      await this.git(["init", "--bare", "--quiet", dir]);
    }
    return dir;
  }

  /** Makes sure the mirror holds `sha`, fetching it when missing; returns the mirror's path. */
  async ensureCommit(repo: RepoRef, sha: string, token: () => Promise<string>): Promise<string> {
    if (!SHA.test(sha)) throw new Error(`refusing unexpected commit: ${repo.owner}/${repo.name}@${sha}`);
    const dir = await this.mirrorDir(repo);
    if (!(await this.holds(dir, sha))) {
      const url = `${this.gitWebUrl}/${repo.owner}/${repo.name}.git`;
      // A ref per commit keeps fetched objects safe from gc; concurrent fetches touch different refs.
      await this.git([`--git-dir=${dir}`, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, `+${sha}:refs/plangate/${sha}`], await token());
    }
    return dir;
  }

  /**
   * The current head of a branch, fetched into the mirror (for the base
   * branch's rules: read there, never from the PR).
   */
  async branchHead(repo: RepoRef, branch: string, token: () => Promise<string>): Promise<{ mirror: string; sha: string }> {
    const { mirror, branchSha } = await this.fetchCommitAndBranch(repo, undefined, branch, token);
    return { mirror, sha: branchSha };
  }

  /**
   * A commit and the current head of a branch, in one fetch: a PR's head and
   * its base branch, whose rules apply. The commit is asked for even when the
   * mirror holds it (the branch is fetched anyway; asking first costs a spawn).
   */
  async fetchCommitAndBranch(repo: RepoRef, sha: string | undefined, branch: string, token: () => Promise<string>): Promise<{ mirror: string; branchSha: string }> {
    if (!SAFE_BRANCH.test(branch) || branch.split("/").some((part) => part === ".." || part.startsWith(".") || part.endsWith(".lock"))) {
      throw new Error(`refusing unexpected branch name: ${branch}`);
    }
    if (sha !== undefined && !SHA.test(sha)) throw new Error(`refusing unexpected commit: ${repo.owner}/${repo.name}@${sha}`);
    const dir = await this.mirrorDir(repo);
    const url = `${this.gitWebUrl}/${repo.owner}/${repo.name}.git`;
    const refspecs = [`+refs/heads/${branch}:refs/plangate/heads/${branch}`];
    if (sha !== undefined) refspecs.unshift(`+${sha}:refs/plangate/${sha}`);
    await this.git([`--git-dir=${dir}`, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, ...refspecs], await token());
    const { output } = await this.gitIn(dir, ["rev-parse", "--verify", `refs/plangate/heads/${branch}^{commit}`]);
    return { mirror: dir, branchSha: output.trim() };
  }

  /** The first parent of a commit (for a merge: the base branch as it stood before the PR landed). */
  async firstParent(repo: RepoRef, sha: string, token: () => Promise<string>): Promise<string> {
    const mirror = await this.ensureCommit(repo, sha, token);
    const { output } = await this.gitIn(mirror, ["rev-parse", "--verify", `${sha}^1^{commit}`]);
    return output.trim();
  }

  private async holds(mirror: string, sha: string): Promise<boolean> {
    const present = await execute({ argv: ["git", `--git-dir=${mirror}`, "cat-file", "-e", `${sha}^{commit}`], cwd: this.root, env: this.gitEnv(), timeoutMs: 30_000 });
    return present.exitCode === 0;
  }

  private async gitIn(mirror: string, args: string[], okCodes = [0]): Promise<{ code: number | null; output: string }> {
    const result = await execute({ argv: ["git", `--git-dir=${mirror}`, ...args], cwd: this.root, env: this.gitEnv(), timeoutMs: GIT_TIMEOUT_MS, maxOutputBytes: 64 * 1024 * 1024 });
    if (!okCodes.includes(result.exitCode ?? -1)) throw new Error(`git ${args[0]} failed: ${result.output.trim()}`);
    return { code: result.exitCode, output: result.output };
  }

  /** Every file path in the tree of `sha`. */
  async listFiles(mirror: string, sha: string): Promise<string[]> {
    const { output } = await this.gitIn(mirror, ["ls-tree", "-r", "-z", "--name-only", sha]);
    return output.split("\0").filter(Boolean);
  }

  /** A file's text at `sha`, or undefined when it does not exist there. */
  async readFile(mirror: string, sha: string, file: string): Promise<string | undefined> {
    const { code, output } = await this.gitIn(mirror, ["cat-file", "-p", `${sha}:${file}`], [0, 128]);
    return code === 0 ? output : undefined;
  }

  /** Lines of terraform files at `sha` that set a module `source` (for local module detection). */
  async moduleSourceLines(mirror: string, sha: string): Promise<{ file: string; text: string }[]> {
    const { output } = await this.gitIn(mirror, ["grep", "-z", "-E", "^\\s*source\\s*=", sha, "--", "*.tf"], [0, 1]);
    // -z output: "<sha>:<file>\0<text>\n"
    return output
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [where = "", text = ""] = line.split("\0");
        return { file: where.slice(sha.length + 1), text };
      });
  }

  /**
   * Writes the tree of `sha` into `into` (no .git inside: the sandbox gets files only),
   * scrubbed of terraform tooling (scrubCheckout); returns the scrubbed paths.
   * `readOnly` (when plangate runs as root): everything written is root's and
   * unwritable, as it is extracted.
   */
  async checkout(repo: RepoRef, sha: string, into: string, token: () => Promise<string>, options: { readOnly?: boolean } = {}): Promise<string[]> {
    const mirror = await this.ensureCommit(repo, sha, token);
    await mkdir(into, { recursive: true });
    const readOnly = options.readOnly && process.getuid?.() === 0;
    // root ignores the missing write bits while extracting and scrubbing; the sandbox's user (nobody) does not.
    const extract = readOnly ? ["/bin/sh", "-c", 'umask 0222 && exec tar -x --no-same-owner --no-same-permissions -C "$1"', "extract", into] : ["tar", "-x", "-C", into];
    await new Promise<void>((resolve, reject) => {
      const archive = spawn("git", [`--git-dir=${mirror}`, "archive", "--format=tar", sha], { env: this.gitEnv(), stdio: ["ignore", "pipe", "pipe"] });
      const tar = spawn(extract[0]!, extract.slice(1), { stdio: ["pipe", "ignore", "pipe"] });
      let errors = "";
      archive.stderr.on("data", (d: Buffer) => (errors += d));
      tar.stderr.on("data", (d: Buffer) => (errors += d));
      archive.stdout.pipe(tar.stdin);
      let pending = 2;
      const done = (code: number | null) => {
        if (code !== 0) errors ||= `exit ${code}`;
        if (--pending === 0) (errors ? reject(new Error(`checkout of ${sha} failed: ${errors.trim()}`)) : resolve());
      };
      archive.on("close", done);
      tar.on("close", done);
      archive.on("error", reject);
      tar.on("error", reject);
    });
    const scrubbed = await scrubCheckout(into);
    if (readOnly) await chmod(into, 0o555);
    return scrubbed;
  }
}
