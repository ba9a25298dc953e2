/**
 * Untrusted text (command arguments, project/stack/workspace names, resource
 * addresses, config and policy messages) made inert before it reaches
 * anything plangate posts: it must never @-mention, link, load an image or
 * autolink, whatever a PR author or commenter typed. Text inside code spans
 * and fences is already inert and never goes through here.
 */

/** Zero-width space: invisible, but it splits what GitHub's mention and autolink filters look for. */
export const ZWSP = "\u200b";

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
  return breakAutolinks(text).replace(/[&<>"'`=[\]|]/g, (c) => ENTITIES[c]!);
}

/** Text for plain-text fields (a check run's title): nothing is escaped, since entities would show. */
export const inertPlainText = (text: string): string => breakAutolinks(text);
