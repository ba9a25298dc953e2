import type { IncomingMessage } from "node:http";

/**
 * The value of the cookie `name` a request carries: undefined when it carries
 * none, or more than one. Two cookies of one name are what a sibling host or
 * a plain-http page planting its own would look like, and which of them the
 * browser sent first says nothing about which is ours, so neither counts.
 */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  let found: string | undefined;
  let seen = 0;
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    seen++;
    found = part.slice(eq + 1).trim();
  }
  return seen === 1 ? found : undefined;
}

export interface CookieOptions {
  path: string;
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
  /** Only over https: set when the public URL is https. */
  secure: boolean;
}

/**
 * A cookie's name as this server sets it: `__Host-NAME` over https (the
 * browser then keeps it only when Secure, Path=/ and host-only, so no other
 * host or plain-http page can set or shadow it), plain NAME otherwise (a
 * plain-http server cannot set a Secure cookie; for local development only).
 */
export const cookieName = (name: string, secure: boolean) => (secure ? `__Host-${name}` : name);

/** A Set-Cookie value: always HttpOnly and SameSite=Lax (the values are random tokens, never user text); never a Domain. */
export function cookieHeader(name: string, value: string, options: CookieOptions): string {
  return [`${name}=${value}`, `Path=${options.path}`, `Max-Age=${options.maxAge}`, "HttpOnly", "SameSite=Lax", ...(options.secure ? ["Secure"] : [])].join("; ");
}
