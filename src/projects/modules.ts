import path from "node:path";

/** A `source = "./x"` or `"../x"` line in a terraform file: a local module call. */
export interface ModuleSourceLine {
  file: string;
  text: string;
}

const LOCAL_SOURCE = /^\s*source\s*=\s*"(\.{1,2}\/[^"]*)"/;

/**
 * Maps each directory to the local module directories it calls (repo-relative,
 * normalised); references escaping the repository are dropped.
 */
export function localModuleCalls(lines: ModuleSourceLine[]): Map<string, Set<string>> {
  const calls = new Map<string, Set<string>>();
  for (const { file, text } of lines) {
    const source = LOCAL_SOURCE.exec(text)?.[1];
    if (!source) continue;
    const dir = path.posix.dirname(file);
    const target = path.posix.normalize(path.posix.join(dir, source)).replace(/\/$/, "");
    if (target === ".." || target.startsWith("../")) continue;
    if (!calls.has(dir)) calls.set(dir, new Set());
    calls.get(dir)!.add(target);
  }
  return calls;
}

/** Every module directory `dir` uses, directly or through other local modules. */
export function modulesUsedBy(dir: string, calls: Map<string, Set<string>>): Set<string> {
  const seen = new Set<string>();
  const stack = [...(calls.get(dir) ?? [])];
  while (stack.length) {
    const next = stack.pop()!;
    if (seen.has(next) || next === dir) continue;
    seen.add(next);
    stack.push(...(calls.get(next) ?? []));
  }
  return seen;
}

export function allModuleDirs(calls: Map<string, Set<string>>): Set<string> {
  return new Set([...calls.values()].flatMap((s) => [...s]));
}
