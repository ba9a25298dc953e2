import { once } from "node:events";
import type { Writable } from "node:stream";
import { auditEventIdBefore, auditEventsAfter, type StoredAuditEvent } from "../db/audit-events.js";
import type { Queryable } from "../db/pool.js";

/** Events read per query: memory stays bounded by one page, however long the chain. */
export const EXPORT_PAGE = 1000;

/** Where an export starts: after an event id, or at the first event recorded at or after a time. */
export type ExportStart = { afterId: number } | { since: Date };

/** One exported line's fields: every column, `created_at` as the ISO text the hash was computed over. */
export type ExportedAuditEvent = Omit<StoredAuditEvent, "created_at"> & { created_at: string };

const EVENT_ID = /^\d+$/;
/** A date, or a date and time with a zone (a time without one would be read in the exporting machine's zone). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/** Reads `--since`'s value: an event id (a whole number) or an ISO 8601 time; undefined when it is neither. */
export function parseExportStart(since: string | undefined): ExportStart | undefined {
  if (since === undefined) return { afterId: 0 };
  if (EVENT_ID.test(since)) {
    const id = Number(since);
    return Number.isSafeInteger(id) ? { afterId: id } : undefined;
  }
  if (!ISO_TIME.test(since)) return undefined;
  const time = new Date(since);
  return Number.isNaN(time.getTime()) ? undefined : { since: time };
}

/** A stored row as one NDJSON line. */
export function auditEventLine(row: StoredAuditEvent): string {
  const line: ExportedAuditEvent = { ...row, created_at: row.created_at.toISOString() };
  return `${JSON.stringify(line)}\n`;
}

/**
 * Writes the audit events from `start` on to `out` as NDJSON, in id order,
 * a page at a time: the next page is read only once `out` has taken the
 * last (its write buffer drained), so a slow reader holds the export back
 * instead of filling memory. Resolves with the number of events written;
 * rejects when `out` fails (a closed pipe).
 */
export async function exportAuditEvents(db: Queryable, start: ExportStart, out: Writable): Promise<number> {
  let failure: Error | undefined;
  const onError = (error: Error) => (failure ??= error);
  out.on("error", onError);
  try {
    let afterId = "afterId" in start ? start.afterId : await auditEventIdBefore(db, start.since);
    let written = 0;
    for (;;) {
      const rows = await auditEventsAfter(db, afterId, EXPORT_PAGE);
      if (failure) throw failure;
      if (rows.length === 0) return written;
      if (!out.write(rows.map(auditEventLine).join(""))) await Promise.race([once(out, "drain"), once(out, "close")]);
      if (failure) throw failure;
      written += rows.length;
      afterId = rows[rows.length - 1]!.id;
      if (rows.length < EXPORT_PAGE) return written;
    }
  } finally {
    out.off("error", onError);
  }
}
