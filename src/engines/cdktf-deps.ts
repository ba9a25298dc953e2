import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, lstat, mkdir, realpath, rename, rm, stat, symlink } from "node:fs/promises";
import path from "node:path";
import { findBinary } from "../settings/find-binary.js";
import { makeReadOnlyTree } from "../sandbox/read-only-tree.js";
import { parsePrJson, readInside, WorkspaceFileError } from "../sandbox/safe-read.js";
import type { TreeMounts } from "../sandbox/project-workspace.js";
import type { Sandbox } from "../sandbox/sandbox.js";

export interface DependencyJob {
  sandbox: Sandbox;
  checkoutDir: string;
  /** A shared read-only export laid at checkoutDir (see project-workspace.ts). */
  tree?: TreeMounts;
  /** The program's folder (host path, links resolved, inside the checkout). */
  programDir: string;
  /** Published node_modules, one folder per key. */
  depsCacheDir: string;
  deadline: number;
}

export type Installed =
  | { ok: true; /** A published cache the synth must see (read-only). */ cacheDir?: string; cached: boolean; output: string }
  | { ok: false; message: string; output: string; timedOut: boolean };

const LOCK_FILES = ["package-lock.json", "npm-shrinkwrap.json"];

/** The message of a failed sandboxed step, with what the sandbox saw appended. */
export const withProblems = (message: string, problems: string[]) => (problems.length ? `${message}: ${problems.join("; ")}` : message);

const SEMVER = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$/;

/**
 * True when every package of the lock file comes from a registry, pinned by
 * its integrity hash: then the installed tree is a function of the key's
 * files, and safe to share. A `file:`/`link:` or git dependency (content from
 * the checkout or a moving ref) is installed privately instead.
 */
export function registryOnly(lock: unknown): boolean {
  if (!lock || typeof lock !== "object") return false;
  const { packages, dependencies } = lock as { packages?: Record<string, unknown>; dependencies?: Record<string, unknown> };
  const entries = packages ? Object.entries(packages).filter(([where]) => where !== "") : Object.entries(dependencies ?? {});
  const stack = packages ? [] : entries.map(([, e]) => e);
  const check = (entry: unknown): boolean => {
    const e = (entry ?? {}) as { link?: unknown; resolved?: unknown; version?: unknown; integrity?: unknown; inBundle?: unknown; bundled?: unknown; dependencies?: unknown };
    if (e.link) return false;
    if (typeof e.resolved === "string" && !/^https?:\/\//.test(e.resolved)) return false;
    if (typeof e.version === "string" && !SEMVER.test(e.version)) return false;
    if (!e.inBundle && !e.bundled && typeof e.integrity !== "string") return false;
    if (!packages && e.dependencies && typeof e.dependencies === "object") stack.push(...Object.values(e.dependencies as Record<string, unknown>));
    return true;
  };
  if (packages) return entries.every(([, e]) => check(e));
  while (stack.length) if (!check(stack.pop())) return false;
  return true;
}

async function binaryIdentity(name: string): Promise<string> {
  const found = findBinary(name);
  if (!found) return `${name}:missing`;
  const real = await realpath(found);
  const s = await stat(real);
  return `${real}:${s.size}:${s.mtimeMs}`;
}

/** Reads a PR file as the host (readInside), or an empty buffer when it does not exist. */
async function hostCopy(job: DependencyJob, name: string): Promise<Buffer> {
  const present = await lstat(path.join(job.programDir, name)).catch(() => undefined);
  return present ? readInside(job.checkoutDir, path.join(job.programDir, name)) : Buffer.alloc(0);
}

/**
 * The cache key of a program's dependencies, or undefined when they must be
 * installed privately: a lock file pinning more than registry packages, or a
 * key file the host cannot read without following a link (npm, in the
 * sandbox, still reads it).
 */
async function cacheKey(job: DependencyJob, lockName: string | undefined): Promise<string | undefined> {
  if (!lockName) return undefined;
  try {
    const lock = await readInside(job.checkoutDir, path.join(job.programDir, lockName));
    if (!registryOnly(parsePrJson(lock.toString("utf8"), lockName))) return undefined;
    const hash = createHash("sha256").update("plangate-cdktf-deps-v2\0").update(`${process.version}\0${await binaryIdentity("node")}\0${await binaryIdentity("npm")}\0`);
    for (const part of [await hostCopy(job, "package.json"), lock, await hostCopy(job, ".npmrc")]) hash.update(`${part.length}\0`).update(part);
    return hash.digest("hex").slice(0, 40);
  } catch (error) {
    if (error instanceof WorkspaceFileError) return undefined; // npm ci will say what is wrong with an invalid lock file
    throw error;
  }
}

/**
 * Installs a cdktf program's npm dependencies in the sandbox (network, no
 * install scripts). Shared between runs only when keyed by everything that
 * decides the tree (package.json, the lock file, .npmrc, node and npm) and
 * the lock pins registry packages by hash; the tree is published straight
 * from the install step, root-owned and read-only, and a later synth sees it
 * read-only. Anything else is installed into the checkout, for this run only.
 */
export async function installDependencies(job: DependencyJob): Promise<Installed> {
  const present = async (name: string) => !!(await lstat(path.join(job.programDir, name)).catch(() => undefined));
  if (!(await present("package.json"))) return { ok: true, cached: false, output: "" };
  let lockName: string | undefined;
  for (const name of LOCK_FILES) if (!lockName && (await present(name))) lockName = name;
  const modules = path.join(job.programDir, "node_modules");
  await rm(modules, { recursive: true, force: true });
  const key = await cacheKey(job, lockName);
  const cacheDir = key ? path.join(job.depsCacheDir, key) : undefined;
  if (cacheDir && existsSync(path.join(cacheDir, "node_modules"))) {
    await symlink(path.join(cacheDir, "node_modules"), modules, "dir");
    return { ok: true, cacheDir, cached: true, output: "" };
  }
  const install = await job.sandbox.run({
    command: [findBinary("npm") ?? "npm", ...(lockName ? ["ci"] : ["install", "--no-package-lock"]), "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier"],
    workDir: job.tree?.workDir ?? job.checkoutDir,
    binds: job.tree?.binds,
    cwd: job.programDir,
    network: true,
    // The sandbox's HOME is in the checkout: a committed .home/.npmrc must not configure npm.
    env: { npm_config_update_notifier: "false", npm_config_userconfig: "/dev/null" },
    timeoutMs: Math.max(1, job.deadline - job.sandbox.clock.now()),
  });
  if (install.exitCode !== 0 || install.timedOut) {
    return { ok: false, message: withProblems(install.timedOut ? "npm install timed out" : "npm install failed", install.problems), output: install.output, timedOut: install.timedOut };
  }
  if (!cacheDir) return { ok: true, cached: false, output: install.output };
  // Published right after the install, before any code of the program runs; atomically, so a
  // concurrent run with the same key either wins or uses the winner's copy (the same packages).
  const installed = await lstat(modules).catch(() => undefined);
  if (installed && !installed.isDirectory()) return { ok: true, cached: false, output: install.output }; // not npm's plain folder: keep it private
  await mkdir(job.depsCacheDir, { recursive: true });
  await chmod(job.depsCacheDir, 0o755); // the synth's user (nobody) must reach a published tree
  const staging = `${cacheDir}.tmp-${randomUUID()}`;
  await mkdir(staging);
  if (installed) await rename(modules, path.join(staging, "node_modules"));
  else await mkdir(path.join(staging, "node_modules")); // a package.json without dependencies installs nothing
  await makeReadOnlyTree(staging, "the dependency cache");
  await rename(staging, cacheDir).catch(async () => rm(staging, { recursive: true, force: true }));
  await symlink(path.join(cacheDir, "node_modules"), modules, "dir");
  return { ok: true, cacheDir, cached: false, output: install.output };
}
