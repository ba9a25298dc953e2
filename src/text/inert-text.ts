/**
 * Untrusted text (command arguments, project/stack/workspace names, resource
 * addresses, config and policy messages) made inert before it reaches
 * anything plangate posts: it must never @-mention, link, load an image or
 * autolink, whatever a PR author or commenter typed, nor hide or reorder
 * text. Text inside code spans and fences is already inert and never goes
 * through here but for escapeInvisible, which everything posted or served
 * goes through last (the GitHub port, the pages).
 */

/** Zero-width space: invisible, but it splits what GitHub's mention and autolink filters look for. */
export const ZWSP = "\u200b";

/**
 * Characters that change how text reads without being seen: bidirectional
 * controls (U+202A–202E, U+2066–2069, U+200E/200F, U+061C), which reorder
 * what follows ("exe.txt" shown for "txt.exe"), and zero-width or otherwise
 * invisible ones (U+200B–200D, U+2060–2064, U+FEFF, soft hyphen, fillers,
 * tag characters…), which make different text look the same.
 */
const INVISIBLE = /[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb]|\ud834[\udd73-\udd7a]|\udb40[\udc00-\udc7f]/g;

const escaped = (c: string) => {
  const code = c.codePointAt(0)!;
  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, "0")}`;
};

/** Whether the zero-width space at `i` is one breakAutolinks puts there (after `@`, in `:​//`, in `www​.`). */
const breaksAutolink = (text: string, i: number) =>
  text[i - 1] === "@" || (text[i - 1] === ":" && text.startsWith("//", i + 1)) || (/www$/i.test(text.slice(Math.max(0, i - 3), i)) && text[i + 1] === ".");

/**
 * Shows every bidirectional control and invisible character as its escape
 * (`\u202e`), so a reader sees what is there. `keepAutolinkBreaks` (for
 * markdown that went through breakAutolinks) leaves the zero-width spaces
 * that split mentions and links: the same character anywhere else is shown.
 */
export function escapeInvisible(text: string, options: { keepAutolinkBreaks?: boolean } = {}): string {
  return text.replace(INVISIBLE, (c, offset: number) => (options.keepAutolinkBreaks && c === ZWSP && breaksAutolink(text, offset) ? c : escaped(c)));
}

/**
 * Breaks what GitHub turns into live references in plain text: `@name`
 * mentions (and e-mail autolinks), and bare `scheme://` and `www.` URLs.
 * GitHub's filters run on the rendered HTML, after entities are decoded, so
 * only an invisible character in between defeats them.
 */
export function breakAutolinks(text: string): string {
  return text
    .replace(/@/g, `@${ZWSP}`)
    .replace(/:\/\//g, `:${ZWSP}//`)
    .replace(/(www)\./gi, `$1${ZWSP}.`);
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#x27;",
  "`": "&#x60;",
  "=": "&#x3D;",
  // CommonMark treats entities as literal text: no link, image or reference
  // can be built from brackets written this way, and no table cell split.
  "[": "&#91;",
  "]": "&#93;",
  "|": "&#124;",
};

/**
 * Text for a markdown comment or check-run summary, also inside inline HTML
 * (`<summary>`): HTML-escaped like Handlebars does, brackets and pipes as
 * entities, mentions and bare URLs broken. Renders as the same characters.
 */
export function inertMarkdown(text: string): string {
  if (!ANY_CHANGE.test(text)) return text;
  return breakAutolinks(escapeInvisible(text)).replace(ENTITY_CHARS, (c) => ENTITIES[c]!);
}

/** The characters ENTITIES writes as entities (each escaped inside the class). */
const ENTITY_CHARS = new RegExp(`[${Object.keys(ENTITIES).map((c) => `\\${c}`).join("")}]`, "g");

/**
 * Text inertMarkdown would change: an invisible character, `@`, `://`,
 * `www.` or a character written as an entity. Most of what a plan comment
 * passes (counts, names, labels) has none and is returned as it is, which a
 * comment of hundreds of projects does thousands of times. Built from
 * INVISIBLE and ENTITIES, so an entity added there is never skipped here.
 */
const ANY_CHANGE = new RegExp(`${INVISIBLE.source}|${ENTITY_CHARS.source}|${/@|:\/\/|www\./.source}`, "i");

/** Text for plain-text fields (a check run's title): nothing is escaped, since entities would show. */
export const inertPlainText = (text: string): string => breakAutolinks(escapeInvisible(text));
