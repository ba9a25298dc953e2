import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { findBinary } from "../settings/find-binary.js";
import type { Sandbox } from "./sandbox.js";

export interface SynthJob {
  sandbox: Sandbox;
  /** The checkout: the sandbox's writable workspace. */
  checkoutDir: string;
  /** The cdktf program's directory, relative to the checkout. */
  projectDir: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Installed node_modules, one folder per lockfile hash, reused by later runs. */
  depsCacheDir: string;
  /** Only these stacks (with the stacks they depend on kept in order); all when absent. */
  stacks?: string[];
}

export interface SynthesizedStack {
  name: string;
  /** The stack's terraform directory, relative to the checkout. */
  dir: string;
  dependencies: string[];
}

export type SynthOutcome =
  | { ok: true; stacks: SynthesizedStack[]; output: string; cachedDependencies: boolean }
  | { ok: false; stage: "install" | "synth"; message: string; output: string; timedOut: boolean };

/** The message of a failed sandboxed step, with what the sandbox saw appended. */
const withProblems = (message: string, problems: string[]) => (problems.length ? `${message}: ${problems.join("; ")}` : message);

const OUT_DIR = ".plangate-cdktf.out";

interface Manifest {
  stacks: Record<string, { name: string; workingDirectory: string; dependencies?: string[] }>;
}

/** Stacks in an order where each comes after the stacks it depends on. */
export function orderStacks(manifest: Manifest): SynthesizedStack[] {
  const all = Object.values(manifest.stacks).map((s) => ({ name: s.name, dir: s.workingDirectory, dependencies: s.dependencies ?? [] }));
  const byName = new Map(all.map((s) => [s.name, s]));
  const ordered: SynthesizedStack[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (s: SynthesizedStack) => {
    if (state.get(s.name) === "done") return;
    if (state.get(s.name) === "visiting") throw new Error(`stack dependency cycle through ${s.name}`);
    state.set(s.name, "visiting");
    for (const d of s.dependencies) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    state.set(s.name, "done");
    ordered.push(s);
  };
  all.sort((a, b) => (a.name < b.name ? -1 : 1)).forEach(visit);
  return ordered;
}

/**
 * Installs the program's dependencies (in the sandbox, with network, cached by
 * lockfile hash), then runs cdktf.json's `app` in the sandbox WITHOUT network
 * and reads the stacks from the synthesized manifest.
 */
export async function cdktfSynth(job: SynthJob): Promise<SynthOutcome> {
  const deadline = Date.now() + job.timeoutMs;
  const programDir = path.join(job.checkoutDir, job.projectDir);
  const fail = (stage: "install" | "synth", message: string, output = "", timedOut = false): SynthOutcome => ({ ok: false, stage, message, output, timedOut });

  let app: string;
  try {
    app = JSON.parse(await readFile(path.join(programDir, "cdktf.json"), "utf8")).app;
  } catch (error) {
    return fail("synth", `cdktf.json cannot be read: ${(error as Error).message}`);
  }
  if (typeof app !== "string" || !app.trim()) return fail("synth", 'cdktf.json has no "app" command');

  const installed = await installDependencies(job, programDir, deadline);
  if (!installed.ok) return installed;

  const outDir = path.join(job.checkoutDir, OUT_DIR);
  await rm(outDir, { recursive: true, force: true });
  const synth = await job.sandbox.run({
    command: ["/bin/sh", "-c", app],
    workDir: job.checkoutDir,
    cwd: programDir,
    network: false,
    env: { ...job.env, CDKTF_OUTDIR: outDir, CI: "1", NODE_OPTIONS: "" },
    pathPrefix: [path.join(programDir, "node_modules", ".bin")],
    readOnly: installed.cacheDir ? [installed.cacheDir] : [],
    timeoutMs: Math.max(1, deadline - Date.now()),
  });
  if (synth.exitCode !== 0 || synth.timedOut) {
    return fail("synth", withProblems(synth.timedOut ? "synth timed out" : `synth failed (exit ${synth.exitCode ?? synth.signal})`, synth.problems), synth.output, synth.timedOut);
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(path.join(outDir, "manifest.json"), "utf8"));
  } catch {
    return fail("synth", `the app wrote no ${OUT_DIR}/manifest.json: is it a cdktf program calling app.synth()?`, synth.output);
  }
  let stacks = orderStacks(manifest).map((s) => ({ ...s, dir: path.relative(job.checkoutDir, path.join(outDir, s.dir)) }));
  if (job.stacks) {
    const missing = job.stacks.filter((name) => !stacks.some((s) => s.name === name));
    if (missing.length) return fail("synth", `stacks not found in the program: ${missing.join(", ")} (it has ${stacks.map((s) => s.name).join(", ")})`, synth.output);
    stacks = stacks.filter((s) => job.stacks!.includes(s.name));
  }
  return { ok: true, stacks, output: [installed.output, synth.output].filter(Boolean).join("\n"), cachedDependencies: installed.cached };
}

type Installed = { ok: true; cacheDir?: string; cached: boolean; output: string } | Extract<SynthOutcome, { ok: false }>;

async function installDependencies(job: SynthJob, programDir: string, deadline: number): Promise<Installed> {
  if (!existsSync(path.join(programDir, "package.json"))) return { ok: true, cached: false, output: "" };
  const lockFile = ["package-lock.json", "npm-shrinkwrap.json"].map((f) => path.join(programDir, f)).find(existsSync);
  const modules = path.join(programDir, "node_modules");
  await rm(modules, { recursive: true, force: true });
  let cacheDir: string | undefined;
  if (lockFile) {
    const key = createHash("sha256").update(await readFile(lockFile)).update(process.version).digest("hex").slice(0, 32);
    cacheDir = path.join(job.depsCacheDir, key);
    if (existsSync(path.join(cacheDir, "node_modules"))) {
      await symlink(path.join(cacheDir, "node_modules"), modules, "dir");
      return { ok: true, cacheDir, cached: true, output: "" };
    }
  }
  const install = await job.sandbox.run({
    command: [findBinary("npm") ?? "npm", ...(lockFile ? ["ci"] : ["install", "--no-package-lock"]), "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier"],
    workDir: job.checkoutDir,
    cwd: programDir,
    network: true,
    env: { npm_config_update_notifier: "false" },
    timeoutMs: Math.max(1, deadline - Date.now()),
  });
  if (install.exitCode !== 0 || install.timedOut) {
    return { ok: false, stage: "install", message: withProblems(install.timedOut ? "npm install timed out" : "npm install failed", install.problems), output: install.output, timedOut: install.timedOut };
  }
  if (!cacheDir) return { ok: true, cached: false, output: install.output };
  // Publish atomically: a concurrent run with the same lockfile may have won; either copy is the same.
  const staging = `${cacheDir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(staging, { recursive: true });
  await rename(modules, path.join(staging, "node_modules"));
  await rename(staging, cacheDir).catch(async () => rm(staging, { recursive: true, force: true }));
  await symlink(path.join(cacheDir, "node_modules"), modules, "dir");
  return { ok: true, cacheDir, cached: false, output: install.output };
}
