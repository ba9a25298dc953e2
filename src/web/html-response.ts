import type { IncomingMessage, ServerResponse } from "node:http";

/** What every dashboard page is sent with: never cached, never framed, no script or resource from elsewhere. */
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "private, no-store",
  "x-robots-tag": "noindex",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

export function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string | string[]> = {}): true {
  res.writeHead(status, { ...PAGE_HEADERS, ...headers }).end(html);
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
