import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { ENGINES } from "../../src/engines/registry.js";

/**
 * The architecture as folders (docs/architecture.md, "Layout"): imports between src/'s
 * folders point downward only, and no module imports itself back through
 * others. Type-only imports count too: a cycle of types is still a tangle.
 * And all SQL lives in src/db/, one query module per table.
 */

const SRC = path.resolve("src");

/**
 * What each folder may import besides itself. Every folder is listed (a new
 * one must take its place), and the rules are themselves a ladder without a
 * loop. At the top: the CLI, which starts the server; below it the root
 * (main.ts, the composition root, and index.ts), which alone builds the
 * worker, the web server, the handlers and the redelivery sweep; these four
 * never import each other.
 */
const MAY_IMPORT: Record<string, string[]> = {
  settings: [],
  audit: ["db", "plans"],
  commands: [],
  text: [],
  plans: ["settings", "github"],
  projects: ["settings", "commands"],
  sandbox: ["settings", "projects"],
  engines: ["sandbox", "settings", "projects", "plans"],
  credentials: ["db", "audit", "plans", "settings", "sandbox"],
  run: ["engines", "sandbox", "settings", "plans", "projects", "credentials"],
  git: ["sandbox", "settings", "github", "engines"],
  github: ["settings", "text"],
  // Rendering is pure: it never reads the database, nor names its types (render ↛ db).
  render: ["plans", "settings", "github", "projects", "commands", "text"],
  db: ["settings", "plans", "projects"],
  jobs: ["commands", "projects", "db", "render", "settings", "github"],
  handlers: ["jobs", "db", "render", "commands", "settings", "projects"],
  redelivery: ["db", "github"],
  worker: ["audit", "credentials", "db", "engines", "git", "github", "jobs", "plans", "projects", "render", "run", "sandbox", "settings", "text"],
  web: ["audit", "credentials", "db", "plans", "render", "settings", "text"],
  "": ["audit", "credentials", "db", "engines", "git", "github", "handlers", "jobs", "redelivery", "render", "run", "sandbox", "settings", "web", "worker"],
  cli: ["", "audit", "credentials", "db", "engines", "git", "github", "jobs", "plans", "projects", "render", "run", "sandbox", "settings", "text"],
};

/** Where an import of `file` on `target` goes against MAY_IMPORT, as "file -> target". */
function upward(edges: Map<string, string[]>, rules: Record<string, string[]>): string[] {
  const against: string[] = [];
  for (const [file, targets] of edges) {
    const allowed = rules[folderOf(file)] ?? [];
    for (const target of targets) {
      const folder = folderOf(target);
      if (folder !== folderOf(file) && !allowed.includes(folder)) against.push(`${file} -> ${target}`);
    }
  }
  return against;
}

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

/** An SQL statement's shape, not just its words: prose such as "update the check run from the worker" does not match. */
const NAME = String.raw`[a-z_][\w.]*`;
const SQL_STATEMENT = [
  new RegExp(String.raw`\bselect\s[\s\S]*?\bfrom\s+${NAME}(\s+[a-z_]\w*)?\s*($|\)|\b(where|order\s+by|group\s+by|join|limit|for\s+update|union|returning)\b)`, "i"),
  new RegExp(String.raw`\binsert\s+into\s+${NAME}\s*(\(|\b(values|select|default)\b)`, "i"),
  new RegExp(String.raw`\bupdate\s+${NAME}(\s+[a-z_]\w*)?\s+set\s+[a-z_]\w*\s*=`, "i"),
  new RegExp(String.raw`\bdelete\s+from\s+${NAME}(\s+[a-z_]\w*)?\s*($|\b(where|using|returning)\b)`, "i"),
  /\b(select|insert|update|delete)\b[\s\S]*\$\d/i, // with a positional parameter
  new RegExp(String.raw`^\s*select\s+${NAME}\(`, "i"), // select some_function(...)
];

/** Where a module runs a query (`x.query(...)`) or holds an SQL statement in a string or template literal. */
function sqlIn(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const at = (node: ts.Node) => `${file}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1}`;
  const visit = (node: ts.Node) => {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === "query") found.push(`${at(node)} .query(`);
    // A placeholder stands in as a name: `from ${schema}.states` still reads as a statement.
    const literal = ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) ? node.text
      : ts.isTemplateExpression(node) ? [node.head.text, ...node.templateSpans.map((span) => span.literal.text)].join("x") : undefined;
    if (literal !== undefined && SQL_STATEMENT.some((pattern) => pattern.test(literal))) found.push(`${at(node)} ${literal.trim().slice(0, 60)}`);
    ts.forEachChild(node, visit);
  };
  visit(source);
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

  test("every folder has its place in the layering, and the layering has no loop", () => {
    const folders = [...new Set([...edges.keys()].map(folderOf))].sort();
    expect(Object.keys(MAY_IMPORT).sort()).toEqual(folders);
    const rules = new Map(Object.entries(MAY_IMPORT).map(([folder, below]) => [folder, below] as const));
    expect(cycles(rules)).toEqual([]);
    expect(Object.entries(MAY_IMPORT).filter(([, below]) => below.includes("cli")).map(([folder]) => folder)).toEqual([]);
  });

  test("imports point downward: each folder imports only the folders below it", () => {
    expect(upward(edges, MAY_IMPORT)).toEqual([]);
  });

  test("no code outside src/engines/ names an engine to tell engines apart", () => {
    const names = ENGINES.names.join("|");
    const compared = new RegExp(`[!=]==?\\s*"(${names})"|"(${names})"\\s*[!=]==?|case\\s+"(${names})"|cdktf\\.json"`);
    const naming = sources(SRC).filter((file) => !path.relative(SRC, file).startsWith("engines/") && compared.test(readFileSync(file, "utf8")));
    expect(naming.map((f) => path.relative(SRC, f))).toEqual([]);
    expect(compared.test('if (run.engine === "cdktf") return')).toBe(true);
  });

  test("no code outside src/engines/ names an engine's tooling folders", () => {
    // scrub.ts removes terraform's tooling names from a checkout before any engine runs: still to move behind the interface.
    const known = new Set(["sandbox/scrub.ts"]);
    const names = ENGINES.toolingDirs.map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\\\./g, "(\\\\)?\\."));
    const naming = new RegExp(`["'\`/|(](${names.join("|")})["'\`/|)$]`);
    const outside = sources(SRC).map((file) => path.relative(SRC, file)).filter((file) => !file.startsWith("engines/") && !known.has(file));
    expect(outside.filter((file) => naming.test(readFileSync(path.join(SRC, file), "utf8")))).toEqual([]);
    expect(naming.test('const IGNORED = /(^|\\/)(\\.terraform|node_modules|cdktf\\.out)(\\/|$)/;')).toBe(true);
    expect(naming.test('cp(dir, out, { filter: (src) => !src.endsWith("/cdktf.out") })')).toBe(true);
  });

  test("all SQL lives in src/db/: no module elsewhere runs a query or holds a statement", () => {
    const outside = sources(SRC).filter((file) => folderOf(path.relative(SRC, file)) !== "db");
    expect(outside.flatMap((file) => sqlIn(path.relative(SRC, file), readFileSync(file, "utf8")))).toEqual([]);
    // The same check finds the statements where they belong.
    const db = sources(path.join(SRC, "db")).filter((file) => sqlIn(file, readFileSync(file, "utf8")).length);
    expect(db.length).toBeGreaterThan(10);
  });

  test("the checks catch what they look for", () => {
    expect(cycles(new Map([["a.ts", ["b.ts"]], ["b.ts", ["a.ts"]], ["c.ts", []]]))).toEqual([["a.ts", "b.ts"]]);
    // A worker importing the web server's module, and the web server importing the CLI: both upward.
    const wrongWay = new Map([["worker/deps.ts", ["web/metrics.ts", "db/pool.ts"]], ["web/dashboard.ts", ["cli/plangate.ts"]], ["cli/plangate.ts", ["main.ts"]]]);
    expect(upward(wrongWay, MAY_IMPORT)).toEqual(["worker/deps.ts -> web/metrics.ts", "web/dashboard.ts -> cli/plangate.ts"]);
    // Rendering naming a database type is upward too.
    expect(upward(new Map([["render/plan-report.ts", ["db/plan-report.ts", "plans/changes.ts"]]]), MAY_IMPORT)).toEqual(["render/plan-report.ts -> db/plan-report.ts"]);
    const statements = [
      'db.query(sql, [1]);',
      '"select graphile_worker.add_job($1, $2::json)";',
      '`select last_id, last_hash from audit_chain_checkpoint${lock ? " for update skip locked" : ""}`;',
      "`select data from ${schema}.states where name = 'default'`;",
      '"insert into audit_events (id, hash) values (1, 2)";',
      '"update audit_chain_checkpoint set last_id = 0";',
      '"delete from worker_heartbeats";',
      '"select pg_advisory_unlock_all()";',
    ];
    expect(statements.filter((text) => sqlIn("a.ts", text).length !== 1)).toEqual([]);
    const prose = [
      '"Select a project from the list below."',
      'log.warn("could not update the check run from the worker")',
      '"create, update, replace, destroy, sensitive and unknown values"',
      '"delete from the queue the jobs of stopped workers: they will be retried"',
      'const query = new URLSearchParams(params);',
    ];
    expect(prose.flatMap((text) => sqlIn("a.ts", text))).toEqual([]);
  });
});
