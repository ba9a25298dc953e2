const CUT_NOTE = "\n\n… (cut to fit GitHub's check-run limit)";
const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;

/**
 * Markdown cut to `limit` characters at a line boundary, with whatever the
 * kept lines opened (a code fence, `<details>`) closed again, so the cut
 * never swallows the rest of the page into a code block.
 */
export function clipText(text: string, limit: number): string {
  if (text.length <= limit) return text;
  let fence: string | undefined;
  let details = 0;
  let kept = 0;
  let best = "";
  const closing = () => `${fence ? `\n${fence}` : ""}${"\n</details>".repeat(details)}${CUT_NOTE}`;
  for (const line of text.split("\n")) {
    const next = kept + line.length + 1;
    const marker = FENCE.exec(line);
    if (fence) {
      if (marker && marker[1]![0] === fence[0] && marker[1]!.length >= fence.length && !marker[2]!.trim()) fence = undefined;
    } else if (marker && !(marker[1]![0] === "`" && marker[2]!.includes("`"))) {
      fence = marker[1];
    } else {
      details += (line.match(/<details\b/gi) ?? []).length - (line.match(/<\/details>/gi) ?? []).length;
      details = Math.max(0, details);
    }
    const ending = closing();
    if (next + ending.length > limit) break;
    kept = next;
    best = text.slice(0, kept) + ending.slice(1);
  }
  return best || `${text.slice(0, Math.max(0, limit - CUT_NOTE.length))}${CUT_NOTE}`;
}
