import { isAlias, isCollection, isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { z } from "zod";
import { repoConfigSchema, type EngineNames, type RepoConfig } from "./repo-config.js";

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

/**
 * Where a character of a policy's rule is in the file: within a plain or
 * quoted one-line scalar, or a block scalar (| or >) line by line; else the
 * rule's start.
 */
function offsetInRule(text: string, doc: Document, path: PropertyKey[], ruleOffset: number): number {
  const node = doc.getIn(path as (string | number)[], true) as Node | undefined;
  if (!isScalar(node) || !node.range || typeof node.value !== "string") return offsetOf(doc, path);
  const start = node.range[0];
  if (node.type === "PLAIN" || node.type === "QUOTE_SINGLE" || node.type === "QUOTE_DOUBLE") {
    const quoted = node.type === "PLAIN" ? 0 : 1;
    // Only where the source holds the value as is (one line, no escapes) does an offset in the value map to one in the file.
    return text.slice(start + quoted, start + quoted + node.value.length) === node.value ? start + quoted + ruleOffset : start;
  }
  if (node.type === "BLOCK_LITERAL") {
    const before = node.value.slice(0, ruleOffset).split("\n");
    let lineStart = text.indexOf("\n", start) + 1;
    const indent = /^ */.exec(text.slice(lineStart))![0].length;
    for (let i = 1; i < before.length; i++) lineStart = text.indexOf("\n", lineStart) + 1;
    return lineStart + indent + before.at(-1)!.length;
  }
  return start;
}

/** Deeper nesting than any real config needs; past it YAML's own conversion takes seconds per byte. */
const MAX_DEPTH = 32;
/** Aliases a config may use at all (a few anchors are fine; fan-out is an attack). */
const MAX_ALIASES = 100;

/** Problems reported at most: a file with a million mistakes gets a comment that stays readable, in time linear in its size. */
export const MAX_PROBLEMS = 20;

/** The first key repeated in its map (by value, as YAML's own check compares scalars), with where it starts. */
function repeatedKey(node: unknown): { offset: number; message: string } | undefined {
  if (!isMap(node)) return undefined;
  const seen = new Set<unknown>();
  for (const { key } of node.items) {
    if (!isScalar(key)) continue;
    if (seen.has(key.value)) return { offset: key.range?.[0] ?? 0, message: "Map keys must be unique" };
    seen.add(key.value);
  }
  return undefined;
}

/**
 * The first node nested deeper than MAX_DEPTH (keys count: a map can be a
 * key), a key repeated in its map, or too many aliases; with where it starts.
 * One walk, linear in the document: YAML's own `uniqueKeys` compares each key
 * with every earlier one (quadratic: 300,000 keys stopped the process).
 */
function tooComplex(doc: Document): { offset: number; message: string } | undefined {
  let aliases = 0;
  const walk = (node: unknown, depth: number): { offset: number; message: string } | undefined => {
    if (isAlias(node) && ++aliases > MAX_ALIASES) return { offset: node.range?.[0] ?? 0, message: `more than ${MAX_ALIASES} aliases` };
    if (!isCollection(node)) return undefined;
    if (depth > MAX_DEPTH) return { offset: node.range?.[0] ?? 0, message: `nested more than ${MAX_DEPTH} levels deep` };
    const repeated = repeatedKey(node);
    if (repeated) return repeated;
    for (const item of node.items as unknown[]) {
      const found = isPair(item) ? walk(item.key, depth + 1) ?? walk(item.value, depth + 1) : walk(item, depth + 1);
      if (found) return found;
    }
    return undefined;
  };
  return walk(doc.contents, 1);
}

const describePath = (path: PropertyKey[]) => path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");

/** A YAML file parsed and validated by a schema: its data, or each problem with its line and column. */
export type YamlResult<T> = { ok: true; data: T } | { ok: false; problems: ConfigProblem[] };

/**
 * Parses a YAML file of plangate's and validates it with `schema`. Every YAML
 * or schema error comes back as data with its line and column (a CEL rule's
 * at the place in the rule); nothing throws for bad input.
 */
export function loadYamlFile<T>(text: string, schema: z.ZodType<T>): YamlResult<T> {
  const lineCounter = new LineCounter();
  // Repeated keys are found by tooComplex, in linear time.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number) => lineCounter.linePos(offset);
  if (doc.errors.length) {
    const problems = doc.errors.slice(0, MAX_PROBLEMS).map((e) => ({ line: at(e.pos[0]).line, column: at(e.pos[0]).col, message: e.message.split("\n")[0]! }));
    return { ok: false, problems };
  }
  const complex = tooComplex(doc);
  if (complex) return { ok: false, problems: [{ line: at(complex.offset).line, column: at(complex.offset).col, message: complex.message }] };
  let raw: unknown;
  try {
    // Unresolved aliases, alias fan-out and bad merge keys are only found while converting.
    raw = doc.toJS({ maxAliasCount: MAX_ALIASES }) ?? {};
  } catch (error) {
    return { ok: false, problems: [{ line: 1, column: 1, message: (error as Error).message.split("\n")[0]! }] };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    // Each problem's place is looked up in its map (linear): only as many as are shown.
    const problems = parsed.error.issues.slice(0, MAX_PROBLEMS).flatMap((issue) => {
      const keys = issue.code === "unrecognized_keys" ? issue.keys.slice(0, MAX_PROBLEMS) : [undefined];
      const ruleOffset = issue.code === "custom" ? (issue.params as { ruleOffset?: number } | undefined)?.ruleOffset : undefined;
      return keys.map((key) => {
        const pos = at(ruleOffset === undefined ? offsetOf(doc, issue.path, key) : offsetInRule(text, doc, issue.path, ruleOffset));
        const where = describePath(key ? [...issue.path, key] : issue.path);
        const message = issue.code === "unrecognized_keys" ? `unknown key "${key}"` : issue.message;
        return { line: pos.line, column: pos.col, message: where ? `${where}: ${message}` : message };
      });
    });
    return { ok: false, problems: problems.slice(0, MAX_PROBLEMS).sort((a, b) => a.line - b.line || a.column - b.column) };
  }
  return { ok: true, data: parsed.data };
}

/**
 * Parses and validates `.plangate.yml`. Every YAML or schema error comes back as
 * data with its line and column; nothing throws for bad input. `engines`:
 * the names `engine:` accepts (the engine registry's).
 */
export function loadRepoConfig(text: string, engines: EngineNames): ConfigResult {
  const parsed = loadYamlFile(text, repoConfigSchema(engines));
  if (!parsed.ok) return parsed;
  return {
    ok: true,
    config: {
      fromFile: true,
      projectsListed: parsed.data.projects.length > 0,
      policies: parsed.data.policies,
      defaults: parsed.data.defaults,
      ...(parsed.data.apply_branches ? { apply_branches: parsed.data.apply_branches } : {}),
      projects: parsed.data.projects.map((p) => ({ ...p, name: p.name ?? p.dir })),
    },
  };
}
