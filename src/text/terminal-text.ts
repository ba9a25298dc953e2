import { escapeInvisible } from "./inert-text.js";

/** Control characters: C0 (escape, carriage return, bell, backspace, newline…), DEL and C1 (a one-byte CSI among them). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Untrusted text (resource addresses, policy names and messages) made inert
 * for a terminal: every control character is shown as its escape (`\u001b`),
 * so no escape sequence can move the cursor, recolour, retitle the window,
 * hide a line or write a hyperlink, and a newline cannot forge an output
 * line; bidirectional controls and invisible characters are shown escaped as
 * everywhere else. Everything else (markdown, @mentions, right-to-left
 * letters) is plain data to a terminal and passes unchanged.
 */
export function inertTerminal(text: string): string {
  return escapeInvisible(text).replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Control characters but newline and tab. */
const CONTROL_IN_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** A rendered comment for a terminal: as inertTerminal, keeping its newlines, tabs and the zero-width spaces that break its autolinks. */
export function inertTerminalLines(text: string): string {
  return escapeInvisible(text, { keepAutolinkBreaks: true }).replace(CONTROL_IN_LINES, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
