import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";

const gitWith = (env: Record<string, string>, cwd: string, ...args: string[]) =>
  execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.com", GIT_CONFIG_NOSYSTEM: "1", ...env },
  }).trim();
const git = (cwd: string, ...args: string[]) => gitWith({}, cwd, ...args);

/**
 * A real repository served by the fake GitHub: a bare repo under the fake's
 * git root, fed by commits made in a scratch work tree.
 */
export class GitRepo {
  readonly work: string;
  readonly bare: string;

  constructor(gitRoot: string, readonly owner: string, readonly name: string) {
    this.bare = path.join(gitRoot, owner, `${name}.git`);
    mkdirSync(this.bare, { recursive: true });
    git(this.bare, "init", "--bare", "--quiet", "-b", "main");
    git(this.bare, "config", "uploadpack.allowAnySHA1InWant", "true");
    git(this.bare, "config", "http.receivepack", "false");
    // Inside the fake's git root, which goes when the fake stops.
    this.work = mkdtempSync(path.join(gitRoot, ".work-"));
    git(this.work, "init", "--quiet", "-b", "main");
    git(this.work, "remote", "add", "origin", this.bare);
  }

  /**
   * Writes files (null deletes, `{ symlink }` links), commits them on `branch`
   * (a new branch starts from main), pushes, and returns the commit sha.
   * `date`: the commit's author and committer date (git's formats), else now.
   * `from`: the branch a new branch starts from (main). `as`: the GitHub user who authors and commits it
   * (their noreply e-mail, which GitHub maps to them), else an e-mail GitHub maps to nobody.
   */
  commit(files: Record<string, string | null | { symlink: string }>, branch = "main", message = "change", date?: string, opts: { from?: string; as?: string } = {}): string {
    const exists = (ref: string) => {
      try {
        git(this.work, "rev-parse", "--verify", "--quiet", ref);
        return true;
      } catch {
        return false;
      }
    };
    if (exists(branch)) git(this.work, "checkout", "--quiet", branch);
    else if (exists(opts.from ?? "main")) git(this.work, "checkout", "--quiet", "-b", branch, opts.from ?? "main");
    else if (branch !== "main") git(this.work, "checkout", "--quiet", "-b", branch);
    for (const [file, content] of Object.entries(files)) {
      const full = path.join(this.work, file);
      rmSync(full, { force: true });
      if (content === null) continue;
      mkdirSync(path.dirname(full), { recursive: true });
      if (typeof content === "string") writeFileSync(full, content);
      else symlinkSync(content.symlink, full);
    }
    git(this.work, "add", "-A");
    const email = opts.as && `${opts.as}@users.noreply.github.com`;
    const who: Record<string, string> = email ? { GIT_AUTHOR_NAME: opts.as!, GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_NAME: opts.as!, GIT_COMMITTER_EMAIL: email } : {};
    gitWith({ ...who, ...(date ? { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } : {}) }, this.work, "commit", "--quiet", "--allow-empty", "-m", message);
    git(this.work, "push", "--quiet", "origin", branch);
    return git(this.work, "rev-parse", "HEAD");
  }

  /** Merges `branch` into `into` (main) with a real merge commit (as GitHub's merge button does), pushes, returns its sha. */
  merge(branch: string, into = "main"): string {
    git(this.work, "checkout", "--quiet", into);
    git(this.work, "merge", "--quiet", "--no-ff", "--no-edit", branch);
    git(this.work, "push", "--quiet", "origin", into);
    return git(this.work, "rev-parse", "HEAD");
  }

  /** A branch's head commit. */
  sha(branch: string): string {
    return git(this.work, "rev-parse", branch);
  }

  /**
   * The commit a merge queue makes for `branch`: `on` (main, or the queue commit of the PR ahead) merged with it,
   * on gh-readonly-queue/main/pr-N-HEAD; returns [sha, ref].
   */
  queueCommit(branch: string, number: number, headSha: string, on = "main"): [string, string] {
    const ref = `gh-readonly-queue/main/pr-${number}-${headSha}`;
    git(this.work, "checkout", "--quiet", "-B", ref, on);
    git(this.work, "merge", "--quiet", "--no-ff", "--no-edit", branch);
    git(this.work, "push", "--quiet", "--force", "origin", ref);
    return [git(this.work, "rev-parse", "HEAD"), `refs/heads/${ref}`];
  }

  /** The queue's merge: main moves to the verified queue commit itself. */
  fastForward(sha: string): void {
    git(this.work, "checkout", "--quiet", "main");
    git(this.work, "merge", "--quiet", "--ff-only", sha);
    git(this.work, "push", "--quiet", "origin", "main");
  }

  /**
   * A commit on a new `branch` from main where every one of `paths` is the
   * same blob of `content` (git plumbing: the blob is written once, however
   * many paths name it). Pushed; returns its sha.
   */
  commitOneBlobAt(paths: string[], content: Buffer | string, branch: string): string {
    const blobFile = path.join(this.work, ".blob");
    writeFileSync(blobFile, content);
    const oid = git(this.work, "hash-object", "-w", blobFile);
    rmSync(blobFile);
    const index = path.join(this.work, ".git", "plumbing-index");
    const withIndex = (...args: string[]) => gitWith({ GIT_INDEX_FILE: index }, this.work, ...args);
    withIndex("read-tree", "main");
    execFileSync("git", ["update-index", "--add", "--index-info"], {
      cwd: this.work,
      env: { ...process.env, GIT_INDEX_FILE: index },
      input: paths.map((p) => `100644 ${oid}\t${p}\n`).join(""),
    });
    const tree = withIndex("write-tree");
    rmSync(index);
    const sha = git(this.work, "commit-tree", tree, "-p", "main", "-m", "one blob at many paths");
    git(this.work, "push", "--quiet", "origin", `${sha}:refs/heads/${branch}`);
    return sha;
  }

  /** main's head commit. */
  head(): string {
    return git(this.work, "rev-parse", "main");
  }
}
