import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import type { RepoRef } from "../github/github.js";
import type { CommitReader } from "./commit-reader.js";
import type { RepoMirrors } from "./repo-mirror.js";

/** A shared export in use by one job; `release` when the job no longer reads it. */
export interface CommitExport {
  /** The exported tree (host path): scrubbed of terraform tooling, root-owned and read-only. */
  tree: string;
  release(): void;
}

interface Entry {
  ready: Promise<string>;
  /** `ready` has resolved: the export is whole on disk. */
  made: boolean;
  users: number;
  repo: RepoRef;
  sha: string;
}

/** A finished group's export, kept to derive the repository's next export from. */
interface Kept {
  sha: string;
  /** Its folder under the root (the tree is its `tree`). */
  dir: string;
  /** Exports being derived from it: it is removed once none is and it was replaced. */
  readers: number;
  replaced: boolean;
}

/** Repositories whose last export a process keeps (each at most PLANGATE_MAX_COMMIT_SIZE on disk). */
export const KEPT_REPOSITORIES = 4;

const SAFE_KEY = /^[A-Za-z0-9._-]+$/;

const repoKey = (repo: RepoRef) => `${repo.owner}/${repo.name}`;

/**
 * One export of a commit per key (a plan group), made once and shared
 * read-only by the group's project jobs: each job lays it read-only under
 * its own workspace and gets a private writable copy of only its own folder
 * (see project-workspace.ts). Jobs of one process share an export through
 * this object; an export is written aside and renamed into place, so a
 * retried job finds it whole or makes it again. Once the group is done,
 * `discard` keeps its export as the repository's last (for the last
 * KEPT_REPOSITORIES repositories), and the repository's next export is
 * derived from it, writing only what the new commit changed (a push to a
 * monorepo changes a few files of thousands). `sweep` removes what a process
 * that died left behind.
 */
export class CommitExports {
  private readonly entries = new Map<string, Entry>();
  /** Keys a discardWhen is looking at again and again: one watch per key, whoever asks. */
  private readonly watched = new Set<string>();
  /** The last export of each repository, least recently kept first. */
  private readonly kept = new Map<string, Kept>();

  /** `exported` is told of every export made, and whether it was derived from a kept one (plangate_commit_exports_total, plangate_commit_exports_derived_total). */
  constructor(
    private readonly root: string,
    private readonly mirrors: RepoMirrors,
    private readonly exported: (derived: boolean) => void = () => undefined,
    /** Folders at the tree's root that runs write outside their project (the engines' writableDirs): empty mount points for a run's private copy. */
    private readonly mountPoints: string[] = [],
  ) {}

  /** Removes every export on disk (at start: the data dir is this process's alone). */
  async sweep(): Promise<void> {
    this.kept.clear();
    await rm(this.root, { recursive: true, force: true });
    await mkdir(this.root, { recursive: true });
    await chmod(this.root, 0o755); // the sandbox's user (nobody) reaches the trees through it
  }

  /**
   * The export of `sha` for `key`, made if no job has made it yet. `reader`:
   * an open reader of the repository's mirror to measure the commit through
   * (see RepoMirrors.checkout), kept open by the caller until this settles.
   */
  async acquire(key: string, repo: RepoRef, sha: string, token: () => Promise<string>, reader?: CommitReader): Promise<CommitExport> {
    if (!SAFE_KEY.test(key)) throw new Error(`refusing unexpected export key: ${key}`);
    let entry = this.entries.get(key);
    if (!entry) {
      const made: Entry = { ready: this.make(key, repo, sha, token, reader), made: false, users: 0, repo, sha };
      made.ready.then(() => (made.made = true)).catch(() => {
        if (this.entries.get(key) === made) this.entries.delete(key);
      });
      this.entries.set(key, made);
      entry = made;
    }
    entry.users++;
    const holder = entry;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      holder.users--;
    };
    try {
      return { tree: await holder.ready, release };
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * Lets go of the export of `key` unless a job of this process still reads
   * it: it becomes its repository's kept export (replacing the one kept
   * before) when this process made it whole, else it is removed.
   */
  async discard(key: string): Promise<void> {
    if (!SAFE_KEY.test(key)) return;
    const entry = this.entries.get(key);
    if (entry && entry.users > 0) return;
    this.entries.delete(key);
    const dir = path.join(this.root, key);
    if (!entry?.made || !existsSync(path.join(dir, "tree"))) return rm(dir, { recursive: true, force: true });
    const keptDir = path.join(this.root, `.kept-${randomUUID()}`);
    await rename(dir, keptDir);
    const repo = repoKey(entry.repo);
    const before = this.kept.get(repo);
    this.kept.delete(repo); // set again below: the most recently kept goes last
    this.kept.set(repo, { sha: entry.sha, dir: keptDir, readers: 0, replaced: false });
    const dropped = [before, ...(this.kept.size > KEPT_REPOSITORIES ? [this.oldest()] : [])];
    await Promise.all(dropped.map((old) => old && this.replace(old)));
  }

  /**
   * Removes the export of `key` once `done` says so: asked now, then (one
   * watch per key however many callers ask) every `everyMs` while it says
   * no, for `forMs` at most. An export a job of this process still reads
   * stays; its job asks again when it ends.
   */
  async discardWhen(key: string, done: () => Promise<boolean>, watch: { everyMs: number; forMs: number; warn: (error: unknown) => void }): Promise<void> {
    const giveUpAt = Date.now() + watch.forMs;
    const look = async (scheduled: boolean): Promise<void> => {
      try {
        if (Date.now() > giveUpAt || (await done())) {
          this.watched.delete(key);
          return await this.discard(key);
        }
      } catch (error) {
        watch.warn(error);
      }
      if (!scheduled && this.watched.has(key)) return; // another caller's watch looks again
      this.watched.add(key);
      setTimeout(() => void look(true), watch.everyMs).unref();
    };
    await look(false);
  }

  /** The least recently kept export, taken out of `kept`. */
  private oldest(): Kept {
    const [repo, old] = this.kept.entries().next().value as [string, Kept];
    this.kept.delete(repo);
    return old;
  }

  /** Removes a kept export that is no longer its repository's, once nothing derives from it. */
  private async replace(old: Kept): Promise<void> {
    old.replaced = true;
    if (old.readers === 0) await rm(old.dir, { recursive: true, force: true });
  }

  /**
   * Writes the export of `sha` into `into`: derived from the repository's
   * kept export when it can be (RepoMirrors.checkoutFrom), else whole.
   */
  private async write(repo: RepoRef, sha: string, into: string, token: () => Promise<string>, reader?: CommitReader): Promise<void> {
    const kept = this.kept.get(repoKey(repo));
    if (kept) {
      kept.readers++;
      try {
        const refused = await this.mirrors.checkoutFrom(repo, sha, into, { sha: kept.sha, tree: path.join(kept.dir, "tree") }, token, { reader });
        if (refused === undefined) return this.exported(true);
      } finally {
        kept.readers--;
        if (kept.replaced) await this.replace(kept);
      }
    }
    this.exported(false);
    // Root's and unwritable for the sandbox's user even where no read-only mount covers it.
    await this.mirrors.checkout(repo, sha, into, token, { readOnly: true, reader });
  }

  private async make(key: string, repo: RepoRef, sha: string, token: () => Promise<string>, reader?: CommitReader): Promise<string> {
    const final = path.join(this.root, key);
    const tree = path.join(final, "tree");
    if (existsSync(tree)) return tree; // renamed into place whole by an earlier attempt
    await mkdir(this.root, { recursive: true });
    const staging = path.join(this.root, `.staging-${randomUUID()}`);
    try {
      await mkdir(staging, { mode: 0o755 });
      await this.write(repo, sha, path.join(staging, "tree"), token, reader);
      for (const dir of this.mountPoints) {
        await rm(path.join(staging, "tree", dir), { recursive: true, force: true });
        await mkdir(path.join(staging, "tree", dir), { mode: 0o555 });
      }
      await chmod(staging, 0o755);
      await rename(staging, final);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      if (existsSync(tree)) return tree;
      throw error;
    }
    return tree;
  }
}
