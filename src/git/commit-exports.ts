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
  users: number;
}

const SAFE_KEY = /^[A-Za-z0-9._-]+$/;

/**
 * One export of a commit per key (a plan group), made once and shared
 * read-only by the group's project jobs: each job lays it read-only under
 * its own workspace and gets a private writable copy of only its own folder
 * (see project-workspace.ts). Jobs of one process share an export through
 * this object; an export is written aside and renamed into place, so a
 * retried job finds it whole or makes it again. `discard` removes it once the
 * group is done; `sweep` removes what a process that died left behind.
 */
export class CommitExports {
  private readonly entries = new Map<string, Entry>();
  /** Keys a discardWhen is looking at again and again: one watch per key, whoever asks. */
  private readonly watched = new Set<string>();

  /** `exported` is told of every export made (plangate_commit_exports_total). */
  constructor(
    private readonly root: string,
    private readonly mirrors: RepoMirrors,
    private readonly exported: () => void = () => undefined,
    /** Folders at the tree's root that runs write outside their project (the engines' writableDirs): empty mount points for a run's private copy. */
    private readonly mountPoints: string[] = [],
  ) {}

  /** Removes every export on disk (at start: the data dir is this process's alone). */
  async sweep(): Promise<void> {
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
      const made: Entry = { ready: this.make(key, repo, sha, token, reader), users: 0 };
      made.ready.catch(() => {
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

  /** Removes the export of `key` unless a job of this process still reads it. */
  async discard(key: string): Promise<void> {
    if (!SAFE_KEY.test(key)) return;
    const entry = this.entries.get(key);
    if (entry && entry.users > 0) return;
    this.entries.delete(key);
    await rm(path.join(this.root, key), { recursive: true, force: true });
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

  private async make(key: string, repo: RepoRef, sha: string, token: () => Promise<string>, reader?: CommitReader): Promise<string> {
    const final = path.join(this.root, key);
    const tree = path.join(final, "tree");
    if (existsSync(tree)) return tree; // renamed into place whole by an earlier attempt
    await mkdir(this.root, { recursive: true });
    const staging = path.join(this.root, `.staging-${randomUUID()}`);
    try {
      await mkdir(staging, { mode: 0o755 });
      this.exported();
      // Root's and unwritable for the sandbox's user even where no read-only mount covers it.
      await this.mirrors.checkout(repo, sha, path.join(staging, "tree"), token, { readOnly: true, reader });
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
