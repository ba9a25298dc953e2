import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Handlebars from "handlebars";
import { escapeInvisible, inertMarkdown, inertPlainText } from "../text/inert-text.js";

export const TEMPLATES_DIR = fileURLToPath(new URL("../../templates/", import.meta.url));

/** The shortest backtick run longer than any inside `text`, so code can hold anything. */
export function fenceFor(text: string, min = 3): string {
  if (!text.includes("`")) return "`".repeat(min);
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  return "`".repeat(Math.max(min, longest + 1));
}

/** Inline code that shows `text` verbatim whatever it holds (safe markup, so `{{code x}}` works as well as `{{{code x}}}`). */
function inlineCode(text: unknown): Handlebars.SafeString {
  const value = escapeInvisible(String(text ?? "").replace(/\s+/g, " "));
  const ticks = fenceFor(value, 1);
  const pad = value.startsWith("`") || value.endsWith("`") ? " " : "";
  return new Handlebars.SafeString(`${ticks}${pad}${value}${pad}${ticks}`);
}

/** Templates that are HTML pages: Handlebars' own HTML escaping is what they need. */
const HTML_TEMPLATES = new Set(["run-page", "dashboard-head", "dashboard-style", "dashboard-nav", "github-number", "dashboard-foot", "dashboard-login", "dashboard-runs", "dashboard-locks", "dashboard-audit", "dashboard-drift"]);
/** Templates whose text GitHub shows as plain text (check-run titles): entities would show, so none are written. */
const PLAIN_TEMPLATES = new Set(["check-title", "check-plan-title"]);
/** The helper every `{{x}}` of a markdown or plain-text template is rewritten to call. */
const INERT_HELPER = "plangate-inert";

type Mode = "html" | "markdown" | "plain";
const modeOf = (name: string): Mode => (HTML_TEMPLATES.has(name) ? "html" : PLAIN_TEMPLATES.has(name) ? "plain" : "markdown");

/** Makes a value inert for `mode`: markup our code built (SafeString, e.g. from `code`) passes as it is. */
function inertValue(mode: Mode) {
  return (value: unknown): string => {
    if (value instanceof Handlebars.SafeString) return value.toString();
    const text = value == null ? "" : String(value);
    return mode === "plain" ? inertPlainText(text) : inertMarkdown(text);
  };
}

/**
 * Rewrites every escaped mustache `{{x}}` (or `{{helper a b}}`) of a parsed
 * template into `{{{inert x}}}` (or `{{{inert (helper a b)}}}`), so double-stash
 * means "untrusted text, made inert" in every template, operators' overrides
 * included. Triple-stash stays raw: it is for markup our code produced.
 */
function inertMustaches(program: hbs.AST.Program, helper: string, isHelper: (name: string) => boolean): hbs.AST.Program {
  program.body = program.body.map((node) => {
    if (node.type === "MustacheStatement") {
      const m = node as hbs.AST.MustacheStatement;
      if (!m.escaped) return m;
      const called = m.params.length > 0 || !!m.hash || (m.path.type === "PathExpression" && isHelper((m.path as hbs.AST.PathExpression).original));
      const value: hbs.AST.Expression = called
        ? ({ type: "SubExpression", path: m.path, params: m.params, hash: m.hash, loc: m.loc } as hbs.AST.SubExpression)
        : m.path;
      const path: hbs.AST.PathExpression = { type: "PathExpression", data: false, depth: 0, parts: [helper], original: helper, loc: m.loc };
      return { ...m, path, params: [value], hash: undefined as unknown as hbs.AST.Hash, escaped: false };
    }
    if (node.type === "BlockStatement" || node.type === "PartialBlockStatement" || node.type === "DecoratorBlock") {
      const b = node as hbs.AST.BlockStatement;
      if (b.program) inertMustaches(b.program, helper, isHelper);
      if (b.inverse) inertMustaches(b.inverse, helper, isHelper);
    }
    return node;
  });
  return program;
}

export interface Templates {
  render(name: string, data: object): string;
  /**
   * True when `name` is plangate's own template, not an operator's override:
   * the plan comment's layout measures its tables row by row only with its
   * own templates, whose length is the sum of their rows'.
   */
  builtIn?(name: string): boolean;
}

/** A check run's title (one line, within GitHub's 255 characters) from templates/check-title.hbs. */
export const checkTitle = (t: Templates, kind: string, data: object = {}) =>
  t.render("check-title", { ...data, kind }).replace(/\s+/g, " ").trim().slice(0, 255);

/** A check run's summary from templates/check-summary.hbs. */
export const checkSummary = (t: Templates, kind: string, data: object = {}) => t.render("check-summary", { ...data, kind }).trim();

/**
 * Loads every templates/*.hbs (each also usable as a partial); files of the
 * same name in overrideDir replace them, so operators can reword anything.
 * In markdown templates `{{x}}` never yields a live mention, link, image or
 * autolink (see inert-text.ts); run pages get HTML escaping.
 */
export async function loadTemplates(overrideDir?: string): Promise<Templates> {
  const hbs = Handlebars.create();
  hbs.registerHelper("code", inlineCode);
  hbs.registerHelper("eq", (a: unknown, b: unknown) => a === b);
  // Handlebars passes its options object last.
  hbs.registerHelper("concat", (...parts: unknown[]) => parts.slice(0, -1).join(""));
  hbs.registerHelper(INERT_HELPER, inertValue("markdown"));
  hbs.registerHelper(`${INERT_HELPER}-plain`, inertValue("plain"));
  const isHelper = (name: string) => Object.hasOwn(hbs.helpers, name);
  const compile = (name: string, source: string) => {
    const mode = modeOf(name);
    if (mode === "html") return hbs.compile(source, { strict: false });
    const helper = mode === "plain" ? `${INERT_HELPER}-plain` : INERT_HELPER;
    return hbs.compile(inertMustaches(hbs.parseWithoutProcessing(source), helper, isHelper), { strict: false });
  };
  const sources = new Map<string, string>();
  const overridden = new Set<string>();
  for (const dir of [TEMPLATES_DIR, overrideDir]) {
    if (!dir || !existsSync(dir)) continue;
    for (const file of (await readdir(dir)).filter((f) => f.endsWith(".hbs"))) {
      const name = path.basename(file, ".hbs");
      sources.set(name, await readFile(path.join(dir, file), "utf8"));
      if (dir !== TEMPLATES_DIR) overridden.add(name);
    }
  }
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  for (const [name, source] of sources) {
    const template = compile(name, source);
    hbs.registerPartial(name, template);
    compiled.set(name, template);
  }
  return {
    render(name, data) {
      const template = compiled.get(name);
      if (!template) throw new Error(`template ${name}.hbs is missing`);
      return template(data);
    },
    builtIn: (name) => compiled.has(name) && !overridden.has(name),
  };
}
