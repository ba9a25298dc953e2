import { realpath } from "node:fs/promises";
import path from "node:path";
import { parsePrJson, readTextInside, WorkspaceFileError } from "../sandbox/safe-read.js";

export interface SynthesizedStack {
  name: string;
  /** The stack's terraform directory, relative to the checkout. */
  dir: string;
  dependencies: string[];
}

/**
 * A stack name plangate accepts. Names become folders on the host (each
 * stack's plan artefacts), so `../../../../tmp/x` must never be one.
 */
export const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

const MANIFEST = "manifest.json";

/** A PR-controlled value shown in a message: quoted, and cut short. */
const shown = (value: unknown) => {
  const text = JSON.stringify(typeof value === "string" ? value : String(value)) ?? "";
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text;
};

/**
 * Stacks in an order where each comes after the stacks it depends on; a cycle
 * is an error message. Iterative (an explicit stack, not recursion): a
 * PR-written chain of 60,000 dependencies must not overflow the call stack.
 */
export function orderStacks(all: SynthesizedStack[]): SynthesizedStack[] | string {
  const byName = new Map(all.map((s) => [s.name, s]));
  const ordered: SynthesizedStack[] = [];
  const state = new Map<string, "visiting" | "done">();
  for (const root of [...all].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (state.get(root.name) === "done") continue;
    // Each frame: a stack being visited and how many of its dependencies were looked at.
    const frames: { stack: SynthesizedStack; next: number }[] = [{ stack: root, next: 0 }];
    state.set(root.name, "visiting");
    while (frames.length) {
      const frame = frames[frames.length - 1]!;
      if (frame.next < frame.stack.dependencies.length) {
        const dep = byName.get(frame.stack.dependencies[frame.next++]!);
        if (!dep || state.get(dep.name) === "done") continue;
        if (state.get(dep.name) === "visiting") return `stack dependency cycle through ${dep.name}`;
        state.set(dep.name, "visiting");
        frames.push({ stack: dep, next: 0 });
        continue;
      }
      frames.pop();
      state.set(frame.stack.name, "done");
      ordered.push(frame.stack);
    }
  }
  return ordered;
}

/**
 * Reads and checks the manifest a synth wrote (PR-controlled): read without
 * following links, every stack name matches STACK_NAME, and every
 * workingDirectory resolves (links included) under the run's own out dir.
 * Returns the stacks in dependency order, or what is wrong, in words that
 * never quote the file's text beyond the offending value.
 */
export async function readManifest(checkoutDir: string, outDir: string): Promise<SynthesizedStack[] | string> {
  let manifest: unknown;
  try {
    manifest = parsePrJson(await readTextInside(checkoutDir, path.join(outDir, MANIFEST), { shown: MANIFEST, maxBytes: 16 * 1024 * 1024 }), MANIFEST);
  } catch (error) {
    if (error instanceof WorkspaceFileError) return error.message;
    throw error;
  }
  const stacks = (manifest as { stacks?: unknown } | null)?.stacks;
  if (!stacks || typeof stacks !== "object" || Array.isArray(stacks)) return `${MANIFEST} has no "stacks" object`;
  const realOut = await realpath(outDir);
  const realCheckout = await realpath(checkoutDir);
  const found: SynthesizedStack[] = [];
  const names = new Set<string>();
  for (const entry of Object.values(stacks as Record<string, unknown>)) {
    const { name, workingDirectory, dependencies = [] } = (entry ?? {}) as { name?: unknown; workingDirectory?: unknown; dependencies?: unknown };
    if (typeof name !== "string" || !STACK_NAME.test(name)) {
      return `${MANIFEST}: stack name ${shown(name)} is refused: a stack name is 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit`;
    }
    if (names.has(name)) return `${MANIFEST}: stack name ${shown(name)} appears twice`;
    if (!Array.isArray(dependencies) || !dependencies.every((d) => typeof d === "string")) return `${MANIFEST}: stack ${name} has "dependencies" that are not a list of names`;
    const outside = `${MANIFEST}: stack ${name} has workingDirectory ${shown(workingDirectory)}, which is refused: it must be a folder under the synth's output folder`;
    if (typeof workingDirectory !== "string" || !workingDirectory || path.isAbsolute(workingDirectory) || workingDirectory.includes("\0")) return outside;
    const lexical = path.resolve(outDir, workingDirectory);
    if (!lexical.startsWith(outDir + path.sep)) return outside;
    const real = await realpath(lexical).catch(() => undefined);
    if (!real) return `${MANIFEST}: stack ${name} has workingDirectory ${shown(workingDirectory)}, which does not exist`;
    if (!real.startsWith(realOut + path.sep)) return outside;
    names.add(name);
    found.push({ name, dir: path.relative(realCheckout, real), dependencies: dependencies as string[] });
  }
  return orderStacks(found);
}
