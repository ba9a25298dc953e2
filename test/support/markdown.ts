const ENTITIES: Record<string, string> = {
  "&quot;": '"',
  "&#x27;": "'",
  "&#x3D;": "=",
  "&#x60;": "`",
  "&#91;": "[",
  "&#93;": "]",
  "&#124;": "|",
  "&lt;": "<",
  "&gt;": ">",
  "&amp;": "&",
};

/** Text as GitHub displays it: the HTML entities plangate writes render as their characters (zero-width spaces stay). */
export const asShown = (markdown: string) => markdown.replace(/&(quot|#x27|#x3D|#x60|#91|#93|#124|lt|gt|amp);/g, (e) => ENTITIES[e]!);

/** Every HTML entity decoded, as GitHub's mention and autolink filters see the text (they run on the rendered HTML). */
const decodeEntities = (text: string) =>
  text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&(quot|lt|gt|amp|commat|lbrack|rbrack|colon|sol|period);/g, (e) => ({ "&quot;": '"', "&lt;": "<", "&gt;": ">", "&amp;": "&", "&commat;": "@", "&lbrack;": "[", "&rbrack;": "]", "&colon;": ":", "&sol;": "/", "&period;": "." })[e]!);

/** The markdown with fenced code blocks and inline code spans removed: GitHub makes nothing live inside them. */
export function outsideCode(markdown: string): string {
  const kept: string[] = [];
  let fence: { char: string; length: number } | undefined;
  for (const line of markdown.split("\n")) {
    const opener = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (opener && opener[1]![0] === fence.char && opener[1]!.length >= fence.length && line.trim() === opener[1]) fence = undefined;
      continue;
    }
    if (opener) {
      fence = { char: opener[1]![0]!, length: opener[1]!.length };
      continue;
    }
    kept.push(line);
  }
  // A code span: a run of n backticks up to the next run of exactly n.
  return kept.join("\n").replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, " ");
}

/**
 * What in a comment GitHub would make live: @-mentions, links, images, raw
 * link/image tags and bare URLs, outside code. An empty list means the text
 * pings nobody and links or loads nothing.
 */
export function liveMarkup(markdown: string): string[] {
  const raw = outsideCode(markdown);
  const found: string[] = [];
  // Markdown syntax is read before entities are decoded: only literal brackets build links.
  for (const m of raw.matchAll(/!?\[[^\]\n]*\]\([^)\n]*\)|^ {0,3}\[[^\]\n]+\]:\s*\S+|<(a|img)\b[^>]*>/gim)) found.push(m[0]);
  const shown = decodeEntities(raw);
  for (const m of shown.matchAll(/@[A-Za-z0-9_][\w./-]*/g)) found.push(m[0]);
  for (const m of shown.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/\S+|www\.\S+/gi)) found.push(m[0]);
  return found;
}
