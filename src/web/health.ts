import { readdir } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { appliedMigrations } from "../db/metrics-queries.js";
import { MIGRATIONS_DIR } from "../db/migrate.js";
import type { Pool } from "../db/pool.js";
import type { Metrics } from "./metrics.js";

const text = (res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8") => {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" }).end(body);
  return true;
};

/** Why this process is not ready (the database does not answer, migrations pending), or undefined when it is. */
async function notReady(pool: Pool): Promise<string | undefined> {
  let applied: string[];
  try {
    applied = await appliedMigrations(pool);
  } catch (error) {
    return `database: ${(error as Error).message}`;
  }
  const pending = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.+\.sql$/.test(f) && !applied.includes(f));
  return pending.length ? `migrations pending: ${pending.join(", ")}` : undefined;
}

/** The paths healthHandler answers; probes and scrape configs (deploy/kubernetes) name these. */
export const HEALTH_PATHS = {
  /** 200 while the process runs: the liveness probe. */
  live: "/healthz",
  /** 200 when the database answers and every migration is applied, else 503: the readiness probe. */
  ready: "/readyz",
  /** Prometheus text. */
  metrics: "/metrics",
} as const;

/** GET /healthz (the process runs), /readyz (database and migrations), /metrics (Prometheus text). */
export function healthHandler(pool: Pool, metrics: Metrics) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method !== "GET") return false;
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path === HEALTH_PATHS.live) return text(res, 200, "ok\n");
    if (path === HEALTH_PATHS.ready) {
      const reason = await notReady(pool);
      return reason ? text(res, 503, `not ready: ${reason}\n`) : text(res, 200, "ready\n");
    }
    if (path === HEALTH_PATHS.metrics) {
      try {
        return text(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
      } catch (error) {
        return text(res, 503, `metrics unavailable: ${(error as Error).message}\n`);
      }
    }
    return false;
  };
}
