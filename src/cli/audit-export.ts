import { exportAuditEvents, parseExportStart } from "../audit/export.js";
import type { Pool } from "../db/pool.js";

const USAGE = "usage: plangate audit export [--since ID|TIME]";

/** Reads `--since VALUE` or `--since=VALUE`; a string when the arguments are wrong. */
function sinceArgument(args: string[]): { since?: string } | string {
  if (args.length === 0) return {};
  const [first, second, ...rest] = args;
  if (first === "--since" && second !== undefined && rest.length === 0) return { since: second };
  if (first?.startsWith("--since=") && second === undefined) return { since: first.slice("--since=".length) };
  return `unexpected arguments "${args.join(" ")}"`;
}

/**
 * `plangate audit export`: the audit events as NDJSON on stdout. Exit 2 for
 * bad arguments; a reader that closes the pipe early ends the export quietly.
 */
export async function auditExport(args: string[], withPool: <T>(fn: (pool: Pool) => Promise<T>) => Promise<T>): Promise<number> {
  const parsed = sinceArgument(args);
  const start = typeof parsed === "string" ? undefined : parseExportStart(parsed.since);
  if (!start) {
    const why = typeof parsed === "string"
      ? parsed
      : `--since must be an event id (a whole number) or an ISO 8601 time such as 2026-12-01 or 2026-12-01T09:30:00Z (got "${parsed.since}")`;
    process.stderr.write(`plangate audit export: ${why}\n${USAGE}\n`);
    return 2;
  }
  return withPool(async (pool) => {
    try {
      await exportAuditEvents(pool, start, process.stdout);
      // A pipe takes stdout's writes asynchronously: the caller exits the process, so
      // wait until the last page has left (a write's callback runs once it, and all before it, did).
      await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
      return 0;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EPIPE") return 0;
      throw error;
    }
  });
}
