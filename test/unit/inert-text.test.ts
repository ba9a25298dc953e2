import { breakAutolinks, escapeInvisible, inertMarkdown } from "../../src/text/inert-text.js";

/**
 * inertMarkdown returns text it would not change as it is, without its
 * replacements (a comment of hundreds of projects passes thousands of names
 * and counts): the result must be what the replacements give, for any text.
 */
const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;", "[": "&#91;", "]": "&#93;", "|": "&#124;" };
const replaced = (text: string) => breakAutolinks(escapeInvisible(text)).replace(/[&<>"'`=[\]|]/g, (c) => ENTITIES[c]!);

// Characters each replacement looks for, some that look like them, and plain ones.
const ALPHABET = ["a", "W", "w", ".", ":", "/", "@", "&", "<", ">", '"', "'", "`", "=", "[", "]", "|", " ", "-", "_", "1", "\u00ad", "\u200b", "\u202e", "\u2066", "\ufeff", "\ud834\udd73", "\udb40\udc41", "\u0130", "\u017f", "é", "🟢", "\n"];

test("inertMarkdown gives what its replacements give, for generated text and for plain text", () => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let n = 0; n < 20_000; n++) {
    const length = Math.floor(next() * 12);
    const text = Array.from({ length }, () => ALPHABET[Math.floor(next() * ALPHABET.length)]!).join("");
    expect(inertMarkdown(text)).toBe(replaced(text));
  }
  for (const text of ["", "12", "projects/p7", "update in place", "WWW.example", "wWw.x", "a://b", "mail a@b", "x\u200by"]) expect(inertMarkdown(text)).toBe(replaced(text));
});
