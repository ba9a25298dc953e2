/** Socket errors of a database that is down, restarting or unreachable. */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE"]);
/** SQLSTATEs of a server shutting down or starting up, or out of connections (class 08 is any connection exception). */
const SERVER_STATES = new Set(["57P01", "57P02", "57P03", "53300"]);

/**
 * Whether `error` says the database cannot be reached right now (as opposed to
 * a query that is wrong): the caller should answer "try again later".
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === "string" && (NETWORK_CODES.has(code) || SERVER_STATES.has(code) || code.startsWith("08"))) return true;
  // node-postgres's own words for a connection that died or never came.
  return typeof message === "string" && /^Connection terminated|^timeout exceeded when trying to connect|^Client has encountered a connection error/.test(message);
}
