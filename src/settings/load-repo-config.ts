import { isMap, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { repoConfigSchema, type RepoConfig } from "./repo-config.js";

export const CONFIG_FILE = ".plangate.yml";

export interface ConfigProblem {
  line: number;
  column: number;
  message: string;
}

export type ConfigResult = { ok: true; config: RepoConfig } | { ok: false; problems: ConfigProblem[] };

/** The source offset of the node at `path`, or of the deepest existing parent. */
function offsetOf(doc: Document, path: PropertyKey[], key?: string): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = (depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as (string | number)[], true)) as Node | null | undefined;
    if (!node?.range) continue;
    if (key !== undefined && depth === path.length && isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === key);
      const keyNode = pair?.key as Node | undefined;
      if (keyNode?.range) return keyNode.range[0];
    }
    // A mapping value's own node starts at the value; a missing item points at its parent.
    return node.range[0];
  }
  return 0;
}

const describePath = (path: PropertyKey[]) => path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");

/**
 * Parses and validates `.plangate.yml`. Every YAML or schema error comes back as
 * data with its line and column; nothing throws for bad input.
 */
export function loadRepoConfig(text: string): ConfigResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => lineCounter.linePos(offset);
  if (doc.errors.length) {
    const problems = doc.errors.map((e) => ({ line: at(e.pos[0]).line, column: at(e.pos[0]).col, message: e.message.split("\n")[0]! }));
    return { ok: false, problems };
  }
  const raw = doc.toJS() ?? {};
  const parsed = repoConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => {
      const keys = issue.code === "unrecognized_keys" ? issue.keys : [undefined];
      return keys.map((key) => {
        const pos = at(offsetOf(doc, issue.path, key));
        const where = describePath(key ? [...issue.path, key] : issue.path);
        const message = issue.code === "unrecognized_keys" ? `unknown key "${key}"` : issue.message;
        return { line: pos.line, column: pos.col, message: where ? `${where}: ${message}` : message };
      });
    });
    return { ok: false, problems: problems.sort((a, b) => a.line - b.line || a.column - b.column) };
  }
  return {
    ok: true,
    config: {
      fromFile: true,
      projectsListed: parsed.data.projects.length > 0,
      policies: parsed.data.policies,
      defaults: parsed.data.defaults,
      projects: parsed.data.projects.map((p) => ({ ...p, name: p.name ?? p.dir })),
    },
  };
}
