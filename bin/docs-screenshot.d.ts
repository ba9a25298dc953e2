/** A self-contained HTML page showing `markdown` as a comment by plangate's bot on a GitHub pull request. */
export function commentPage(markdown: string, options?: { author?: string; open?: boolean }): string;
