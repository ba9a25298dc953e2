import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Handlebars from "handlebars";

export const TEMPLATES_DIR = fileURLToPath(new URL("../../templates/", import.meta.url));

/** The shortest backtick run longer than any inside `text`, so code can hold anything. */
export function fenceFor(text: string, min = 3): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  return "`".repeat(Math.max(min, longest + 1));
}

/** Inline code that shows `text` verbatim whatever it holds. */
function inlineCode(text: unknown): string {
  const value = String(text ?? "").replace(/\s+/g, " ");
  const ticks = fenceFor(value, 1);
  const pad = value.startsWith("`") || value.endsWith("`") ? " " : "";
  return `${ticks}${pad}${value}${pad}${ticks}`;
}

export interface Templates {
  render(name: string, data: object): string;
}

/** A check run's title (one line, within GitHub's 255 characters) from templates/check-title.hbs. */
export const checkTitle = (t: Templates, kind: string, data: object = {}) =>
  t.render("check-title", { ...data, kind }).replace(/\s+/g, " ").trim().slice(0, 255);

/** A check run's summary from templates/check-summary.hbs. */
export const checkSummary = (t: Templates, kind: string, data: object = {}) => t.render("check-summary", { ...data, kind }).trim();

/**
 * Loads every templates/*.hbs (each also usable as a partial); files of the
 * same name in overrideDir replace them, so operators can reword anything.
 */
export async function loadTemplates(overrideDir?: string): Promise<Templates> {
  const hbs = Handlebars.create();
  hbs.registerHelper("code", inlineCode);
  hbs.registerHelper("eq", (a: unknown, b: unknown) => a === b);
  const sources = new Map<string, string>();
  for (const dir of [TEMPLATES_DIR, overrideDir]) {
    if (!dir || !existsSync(dir)) continue;
    for (const file of (await readdir(dir)).filter((f) => f.endsWith(".hbs"))) {
      sources.set(path.basename(file, ".hbs"), await readFile(path.join(dir, file), "utf8"));
    }
  }
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  for (const [name, source] of sources) {
    hbs.registerPartial(name, source);
    compiled.set(name, hbs.compile(source, { strict: false }));
  }
  return {
    render(name, data) {
      const template = compiled.get(name);
      if (!template) throw new Error(`template ${name}.hbs is missing`);
      return template(data);
    },
  };
}
