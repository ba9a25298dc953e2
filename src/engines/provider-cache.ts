import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ExecResult } from "./exec.js";
import { makeReadOnlyTree } from "./read-only-tree.js";
import { readInside } from "./safe-read.js";
import type { TreeMounts } from "./project-workspace.js";
import type { Sandbox, SandboxBind } from "./sandbox.js";
import type { TerraformHome } from "./terraform-home.js";

/**
 * Where terraform sees its provider cache inside the sandbox. It must not
 * move between a job's commands: init links `.terraform/providers/...` to
 * paths under it, and plan, show and apply follow those links.
 */
export const PROVIDER_CACHE_PATH = "/plangate/provider-cache";

/** The file in a job's out dir naming the cache its init used (for an apply in the same workspace without init). */
const RECORD = "provider-cache.path";

export interface ProviderCacheJob {
  sandbox: Sandbox;
  bin: string;
  home: TerraformHome;
  checkoutDir: string;
  projectDir: string;
  outDir: string;
  tree?: TreeMounts;
}

interface CacheState {
  /** Host folder. */
  dir: string;
  writable: boolean;
  /** A staging folder is renamed to this key folder once init has populated it. */
  publishTo?: string;
  /** A published cache this job did not populate. */
  shared: boolean;
}

const succeeded = (r: ExecResult) => r.exitCode === 0 && !r.timedOut;

async function binaryIdentity(bin: string): Promise<string> {
  const real = await realpath(bin);
  const s = await stat(real);
  return `${real}:${s.size}:${s.mtimeMs}:${s.ino}`;
}

/**
 * The provider cache of one job's terraform commands. Caches are shared only
 * between projects with the same `.terraform.lock.hcl` (and the same terraform
 * binary and installation source): the first job with that key populates a
 * private staging folder during `init` ONLY (no PR code runs in init: HOME is
 * an empty read-only folder, the checkout was scrubbed of terraform tooling),
 * which is published atomically right after, root-owned and read-only, and
 * bound read-only into every later command. Nothing a plan runs (providers are
 * PR-chosen code) can write into a cache another PR's run executes. No lock
 * file, or no bubblewrap: a private cache in the job's out dir.
 */
export class ProviderCacheLease {
  private constructor(
    private readonly job: ProviderCacheJob,
    private state: CacheState,
  ) {}

  /** Opens the cache for a job whose first command is `init`. */
  static async forInit(job: ProviderCacheJob): Promise<ProviderCacheLease> {
    if (job.sandbox.kind !== "bwrap") return ProviderCacheLease.private(job);
    let lock: Buffer;
    try {
      lock = await readInside(job.checkoutDir, path.join(job.projectDir, ".terraform.lock.hcl"));
    } catch {
      return ProviderCacheLease.private(job); // no lock file (or not a plain file): nothing to share safely
    }
    const key = createHash("sha256").update("plangate-provider-cache-v1\0").update(await binaryIdentity(job.bin)).update("\0").update(job.home.installSource).update("\0").update(lock).digest("hex").slice(0, 40);
    const published = path.join(job.home.providerCacheRoot, key);
    if (existsSync(published)) return new ProviderCacheLease(job, { dir: published, writable: false, shared: true });
    const staging = path.join(job.home.providerCacheRoot, `.staging-${randomUUID()}`);
    await mkdir(staging, { mode: 0o755 });
    return new ProviderCacheLease(job, { dir: staging, writable: true, publishTo: published, shared: false });
  }

  /** Reopens, read-only, the cache an earlier init in the same workspace and out dir used. */
  static async afterInit(job: ProviderCacheJob): Promise<ProviderCacheLease> {
    const dir = (await readFile(path.join(job.outDir, RECORD), "utf8").catch(() => "")).trim();
    if (!dir || !existsSync(dir)) throw new Error("no provider cache is recorded for this workspace: terraform init has not run in it");
    return new ProviderCacheLease(job, { dir, writable: false, shared: false });
  }

  private static async private(job: ProviderCacheJob): Promise<ProviderCacheLease> {
    const dir = path.join(job.outDir, "provider-cache");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return new ProviderCacheLease(job, { dir, writable: true, shared: false });
  }

  /** True while this job's init is to populate a cache other jobs will share: init must run alone, before any PR code. */
  get populatesShared(): boolean {
    return this.state.publishTo !== undefined;
  }

  /** The cache folder as terraform sees it (TF_PLUGIN_CACHE_DIR). */
  get path(): string {
    return this.job.sandbox.kind === "bwrap" ? PROVIDER_CACHE_PATH : this.state.dir;
  }

  /** The mounts of the next command: the cache at its fixed path, and an empty read-only HOME. */
  binds(): SandboxBind[] {
    if (this.job.sandbox.kind !== "bwrap") return [];
    return [
      { source: this.state.dir, target: PROVIDER_CACHE_PATH, writable: this.state.writable },
      // HOME is in the checkout: ~/.terraform.d holds an implicit provider mirror and
      // credentials, and git (module installs, while a cache is writable) obeys ~/.gitconfig.
      { source: this.job.home.emptyHome, target: path.join(this.job.tree?.workDir ?? this.job.checkoutDir, ".home"), writable: false },
    ];
  }

  /**
   * Runs `init` (with the steps after it, unless this job populates the
   * cache) with the cache writable only if this job populates it, then
   * publishes it and turns it read-only for the job's later commands. A shared
   * cache that lacks a provider the configuration needs (its lock file is
   * behind) makes init fail on the read-only path: init runs again with a
   * private cache.
   */
  async init<R extends ExecResult>(runInit: () => Promise<R>): Promise<R> {
    const result = await runInit();
    if (succeeded(result)) {
      await this.seal();
      return result;
    }
    if (this.state.shared && result.output.includes(PROVIDER_CACHE_PATH)) {
      this.state = (await ProviderCacheLease.private(this.job)).state;
      return this.init(runInit);
    }
    if (this.state.publishTo) await rm(this.state.dir, { recursive: true, force: true });
    return result;
  }

  private async seal(): Promise<void> {
    const { publishTo } = this.state;
    if (publishTo) {
      await makeReadOnlyTree(this.state.dir, "the provider cache");
      try {
        await rename(this.state.dir, publishTo);
        this.state = { dir: publishTo, writable: false, shared: false };
      } catch {
        // Another job with the same key published first; its content is the same lock file's.
        await rm(this.state.dir, { recursive: true, force: true });
        this.state = { dir: publishTo, writable: false, shared: true };
      }
    }
    this.state = { ...this.state, writable: false };
    await writeFile(path.join(this.job.outDir, RECORD), this.state.dir);
  }
}
