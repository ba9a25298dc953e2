import { realpath } from "node:fs/promises";
import path from "node:path";
import { parsePrJson, readTextInside, WorkspaceFileError } from "./safe-read.js";

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

/** Stacks in an order where each comes after the stacks it depends on; a cycle is an error message. */
export function orderStacks(all: SynthesizedStack[]): SynthesizedStack[] | string {
  const byName = new Map(all.map((s) => [s.name, s]));
  const ordered: SynthesizedStack[] = [];
  const state = new Map<string, "visiting" | "done">();
  let cycle: string | undefined;
  const visit = (s: SynthesizedStack) => {
    if (cycle || state.get(s.name) === "done") return;
    if (state.get(s.name) === "visiting") {
      cycle = `stack dependency cycle through ${s.name}`;
      return;
    }
    state.set(s.name, "visiting");
    for (const d of s.dependencies) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    state.set(s.name, "done");
    ordered.push(s);
  };
  [...all].sort((a, b) => (a.name < b.name ? -1 : 1)).forEach(visit);
  return cycle ?? ordered;
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
  for (const entry of Object.values(stacks as Record<string, unknown>)) {
    const { name, workingDirectory, dependencies = [] } = (entry ?? {}) as { name?: unknown; workingDirectory?: unknown; dependencies?: unknown };
    if (typeof name !== "string" || !STACK_NAME.test(name)) {
      return `${MANIFEST}: stack name ${shown(name)} is refused: a stack name is 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit`;
    }
    if (found.some((s) => s.name === name)) return `${MANIFEST}: stack name ${shown(name)} appears twice`;
    if (!Array.isArray(dependencies) || !dependencies.every((d) => typeof d === "string")) return `${MANIFEST}: stack ${name} has "dependencies" that are not a list of names`;
    const outside = `${MANIFEST}: stack ${name} has workingDirectory ${shown(workingDirectory)}, which is refused: it must be a folder under the synth's output folder`;
    if (typeof workingDirectory !== "string" || !workingDirectory || path.isAbsolute(workingDirectory) || workingDirectory.includes("\0")) return outside;
    const lexical = path.resolve(outDir, workingDirectory);
    if (!lexical.startsWith(outDir + path.sep)) return outside;
    const real = await realpath(lexical).catch(() => undefined);
    if (!real) return `${MANIFEST}: stack ${name} has workingDirectory ${shown(workingDirectory)}, which does not exist`;
    if (!real.startsWith(realOut + path.sep)) return outside;
    found.push({ name, dir: path.relative(realCheckout, real), dependencies: dependencies as string[] });
  }
  return orderStacks(found);
}
