import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { ENGINES } from "../../src/engines/registry.js";

/**
 * The architecture as folders (README, "Layout"): imports between src/'s
 * folders point downward only, and no module imports itself back through
 * others. Type-only imports count too: a cycle of types is still a tangle.
 */

const SRC = path.resolve("src");

/** What each folder may import besides itself; a folder not listed here may import anything (the entry points). */
const MAY_IMPORT: Record<string, string[]> = {
  settings: [],
  audit: ["db", "plans"],
  commands: [],
  text: [],
  plans: ["settings", "github"],
  projects: ["settings", "commands"],
  sandbox: ["settings", "projects"],
  engines: ["sandbox", "settings", "projects", "plans"],
  run: ["engines", "sandbox", "settings", "plans", "projects"],
  git: ["sandbox", "settings", "github", "engines"],
  github: ["settings", "text"],
  render: ["plans", "settings", "github", "db", "projects", "commands", "text"],
  db: ["settings", "plans", "projects", "audit"],
  jobs: ["commands", "projects", "db", "render", "settings", "github"],
  handlers: ["jobs", "db", "render", "commands", "settings", "projects"],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"|import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g;

function graph(): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, "utf8");
    const targets = [...text.matchAll(IMPORT)].map((m) => path.resolve(path.dirname(file), (m[1] ?? m[2])!.replace(/\.js$/, ".ts")));
    edges.set(path.relative(SRC, file), targets.map((t) => path.relative(SRC, t)));
  }
  return edges;
}

const folderOf = (file: string) => (file.includes("/") ? file.split("/")[0]! : "");

/** The strongly connected components with more than one module (Tarjan), or a module importing itself. */
function cycles(edges: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (edges.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  return found;
}

describe("layering", () => {
  const edges = graph();

  test("the graph is read: every module is found, with its imports", () => {
    expect(edges.size).toBeGreaterThan(100);
    expect(edges.get("main.ts")).toContain("settings/settings.ts");
  });

  test("no import cycle", () => {
    expect(cycles(edges)).toEqual([]);
  });

  test("imports point downward: each folder imports only the folders below it", () => {
    const against: string[] = [];
    for (const [file, targets] of edges) {
      const allowed = MAY_IMPORT[folderOf(file)];
      if (!allowed) continue;
      for (const target of targets) {
        const folder = folderOf(target);
        if (folder !== folderOf(file) && !allowed.includes(folder)) against.push(`${file} -> ${target}`);
      }
    }
    expect(against).toEqual([]);
  });

  test("no code outside src/engines/ names an engine to tell engines apart", () => {
    const names = ENGINES.names.join("|");
    const compared = new RegExp(`[!=]==?\\s*"(${names})"|"(${names})"\\s*[!=]==?|case\\s+"(${names})"|cdktf\\.json"`);
    const naming = sources(SRC).filter((file) => !path.relative(SRC, file).startsWith("engines/") && compared.test(readFileSync(file, "utf8")));
    expect(naming.map((f) => path.relative(SRC, f))).toEqual([]);
    expect(compared.test('if (run.engine === "cdktf") return')).toBe(true);
  });

  test("the checks catch what they look for", () => {
    expect(cycles(new Map([["a.ts", ["b.ts"]], ["b.ts", ["a.ts"]], ["c.ts", []]]))).toEqual([["a.ts", "b.ts"]]);
  });
});
