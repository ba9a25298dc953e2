import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { escapeInvisible } from "../text/inert-text.js";

/** The policy of every page: nothing loads from anywhere, only the page's own inline styles apply; no script runs unless `pageHeaders` names its nonce. */
const CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * What every page (dashboard and run page) is sent with: never cached, never
 * framed, never sniffed, no referrer (a run page's address holds its token),
 * no script or resource from elsewhere. `scriptNonce`: the one inline script
 * the page may run (its `<script nonce>`); text of a plan can never carry it.
 */
export function pageHeaders(scriptNonce?: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "private, no-store",
    "x-robots-tag": "noindex",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": scriptNonce ? `${CONTENT_SECURITY_POLICY}; script-src 'nonce-${scriptNonce}'` : CONTENT_SECURITY_POLICY,
  };
}

/** A fresh nonce for one page's inline script. */
export const scriptNonce = () => randomBytes(18).toString("base64url");

/** Sends a page: with pageHeaders, and every bidirectional control or invisible character in it shown escaped (`\u202e`). */
export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string | string[]> = {}): true {
  res.writeHead(status, { ...pageHeaders(), ...headers }).end(escapeInvisible(html));
  return true;
}

/** A redirect after a form or a login step (303: the browser follows with GET). */
export function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}, status = 303): true {
  res.writeHead(status, { location, "cache-control": "no-store", ...headers }).end();
  return true;
}

/** The fields of an urlencoded form body (already read by the body limit into req.body). */
export function formFields(req: IncomingMessage): URLSearchParams {
  const body = (req as IncomingMessage & { body?: unknown }).body;
  const type = String(req.headers["content-type"] ?? "");
  if (typeof body !== "string" || !type.startsWith("application/x-www-form-urlencoded")) return new URLSearchParams();
  return new URLSearchParams(body);
}
