import { mkdir, realpath, rm } from "node:fs/promises";
import path from "node:path";
import { resolveInside } from "../projects/safe-dir.js";
import { installDependencies, withProblems } from "./cdktf-deps.js";
import { readManifest, type SynthesizedStack } from "./cdktf-manifest.js";
import type { TreeMounts } from "../sandbox/project-workspace.js";
import { parsePrJson, readTextInside, WorkspaceFileError } from "../sandbox/safe-read.js";
import type { Sandbox } from "../sandbox/sandbox.js";

export type { SynthesizedStack } from "./cdktf-manifest.js";

export interface SynthJob {
  sandbox: Sandbox;
  /** The checkout: the sandbox's writable workspace, unless `tree` says otherwise. */
  checkoutDir: string;
  /** A shared read-only export laid at checkoutDir, with the program's folder and CDKTF_OUT_DIR writable over it. */
  tree?: TreeMounts;
  /** The cdktf program's directory, relative to the checkout. */
  projectDir: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Installed node_modules, one folder per key (see cdktf-deps.ts), reused by later runs. */
  depsCacheDir: string;
  /** Only these stacks (with the stacks they depend on kept in order); all when absent. */
  stacks?: string[];
}

export type SynthOutcome =
  | { ok: true; stacks: SynthesizedStack[]; output: string; cachedDependencies: boolean }
  | { ok: false; tool: "cdktf"; stage: "install" | "synth"; message: string; output: string; timedOut: boolean };

/** Where the synth writes, at the checkout's root (a shared export holds an empty one to mount a private copy on). */
export const CDKTF_OUT_DIR = ".plangate-cdktf.out";
const OUT_DIR = CDKTF_OUT_DIR;

/** cdktf.json's `app`, read without following links; a problem is a message that never quotes the file. */
async function appCommand(checkoutDir: string, programDir: string): Promise<string> {
  let config: unknown;
  try {
    config = parsePrJson(await readTextInside(checkoutDir, path.join(programDir, "cdktf.json"), { shown: "cdktf.json", maxBytes: 1024 * 1024 }), "cdktf.json");
  } catch (error) {
    if (error instanceof WorkspaceFileError) throw new WorkspaceFileError(`cdktf.json cannot be read: ${error.message}`);
    throw error;
  }
  const app = (config as { app?: unknown } | null)?.app;
  if (typeof app !== "string" || !app.trim()) throw new WorkspaceFileError('cdktf.json has no "app" command');
  return app;
}

/**
 * The `wanted` stacks and every stack they depend on, directly or not: a
 * stack cannot be planned without the stacks it reads from. Keeps the
 * manifest's dependency order. Iterative, as orderStacks: a long chain
 * must not overflow the call stack.
 */
export function withDependencies(ordered: SynthesizedStack[], wanted: string[]): SynthesizedStack[] {
  const byName = new Map(ordered.map((s) => [s.name, s]));
  const kept = new Set<string>();
  const toKeep = [...wanted];
  while (toKeep.length) {
    const name = toKeep.pop()!;
    if (kept.has(name) || !byName.has(name)) continue;
    kept.add(name);
    for (const dep of byName.get(name)!.dependencies) toKeep.push(dep);
  }
  return ordered.filter((s) => kept.has(s.name));
}

/**
 * Installs the program's dependencies (in the sandbox, with network, cached
 * when safe: cdktf-deps.ts), then runs cdktf.json's `app` in the sandbox
 * WITHOUT network and reads the stacks from the synthesized manifest, whose
 * names and folders are checked before the host uses them.
 */
export async function cdktfSynth(job: SynthJob): Promise<SynthOutcome> {
  const deadline = job.sandbox.clock.now() + job.timeoutMs;
  const fail = (stage: "install" | "synth", message: string, output = "", timedOut = false): SynthOutcome => ({ ok: false, tool: "cdktf", stage, message, output, timedOut });

  // The host works below the checkout only on paths without links (an earlier synth may have planted some).
  let programDir: string;
  let app: string;
  try {
    const real = await resolveInside(job.checkoutDir, job.projectDir);
    programDir = path.join(job.checkoutDir, path.relative(await realpath(job.checkoutDir), real));
    app = await appCommand(job.checkoutDir, programDir);
  } catch (error) {
    return fail("synth", (error as Error).message);
  }

  const installed = await installDependencies({ sandbox: job.sandbox, checkoutDir: job.checkoutDir, tree: job.tree, programDir, depsCacheDir: job.depsCacheDir, deadline });
  if (!installed.ok) return { ...installed, tool: "cdktf", stage: "install" };

  const outDir = path.join(job.checkoutDir, OUT_DIR);
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir); // empty, and a mount's source when the tree is shared
  const synth = await job.sandbox.run({
    command: ["/bin/sh", "-c", app],
    workDir: job.tree?.workDir ?? job.checkoutDir,
    binds: job.tree?.binds,
    cwd: programDir,
    network: false,
    env: { ...job.env, CDKTF_OUTDIR: outDir, CI: "1", NODE_OPTIONS: "" },
    pathPrefix: [path.join(programDir, "node_modules", ".bin")],
    readOnly: installed.cacheDir ? [installed.cacheDir] : [],
    timeoutMs: Math.max(1, deadline - job.sandbox.clock.now()),
  });
  if (synth.exitCode !== 0 || synth.timedOut) {
    return fail("synth", withProblems(synth.timedOut ? "synth timed out" : `synth failed (exit ${synth.exitCode ?? synth.signal})`, synth.problems), synth.output, synth.timedOut);
  }
  const manifest = await readManifest(job.checkoutDir, outDir);
  if (typeof manifest === "string") {
    const missing = /manifest\.json does not exist$/.test(manifest);
    return fail("synth", missing ? `the app wrote no ${OUT_DIR}/manifest.json: is it a cdktf program calling app.synth()?` : manifest, synth.output);
  }
  let stacks = manifest;
  if (job.stacks) {
    const missing = job.stacks.filter((name) => !stacks.some((s) => s.name === name));
    if (missing.length) return fail("synth", `stacks not found in the program: ${missing.join(", ")} (it has ${stacks.map((s) => s.name).join(", ")})`, synth.output);
    stacks = withDependencies(stacks, job.stacks);
  }
  return { ok: true, stacks, output: [installed.output, synth.output].filter(Boolean).join("\n"), cachedDependencies: installed.cached };
}
